import MeshwardCore

/// Every file of a spec merged into one: top-level settings agreed, nodes and flows gathered and
/// checked for duplicates across files. Nodes and flows keep their file order (by path, then position).
struct MergedSpec: Sendable {
    var cluster: String?
    var reqid: UInt32
    var cipher: Cipher
    var rekey: RekeyPolicy
    var drain: Duration
    var enforcement: Enforcement
    var endpoint: NodeEndpoint
    var certificateLifetime: Duration
    var nodes: [SpecFile.Node]
    var flows: [SpecFile.Flow]

    /// Merges `files`, logging disagreements, duplicates and missing required keys.
    static func merge(_ files: [SpecFile], log: inout DiagnosticLog) -> MergedSpec {
        let files = files.sorted { $0.path < $1.path }
        let firstLocation = SourceLocation(file: files.first?.path ?? "<no file>")

        let version = agreed(files.compactMap(\.version), key: "version", log: &log)
        if version == nil, !files.isEmpty, !files.contains(where: { $0.present.contains("version") }) {
            log.error("no spec file sets 'version'; add 'version: 1'", at: firstLocation)
        }
        let cluster = agreed(files.compactMap(\.cluster), key: "cluster", log: &log)
        if cluster == nil, !files.isEmpty, !files.contains(where: { $0.present.contains("cluster") }) {
            log.error("no spec file sets 'cluster'; add e.g. 'cluster: shop'", at: firstLocation)
        }
        let reqid = agreed(files.compactMap(\.reqid), key: "reqid", log: &log) ?? Reqid.meshwardDefault.rawValue
        let defaults = agreed(files.compactMap(\.defaults), key: "defaults", log: &log) ?? SpecFile.Defaults()

        var merged = MergedSpec(
            cluster: cluster, reqid: reqid, cipher: defaults.cipher ?? .aesGCM256,
            rekey: RekeyPolicy(every: defaults.rekeyEvery ?? RekeyPolicy.default.every, packets: defaults.rekeyPackets),
            drain: defaults.drain ?? .seconds(5), enforcement: defaults.enforcement ?? .required,
            endpoint: defaults.endpoint ?? .sim,
            certificateLifetime: defaults.certificateLifetime ?? FleetIntent.defaultCertificateLifetime, nodes: [],
            flows: [])

        var nodeNames: [String: SourceLocation] = [:]
        var addressOwners: [IPAddress: (node: String, location: SourceLocation)] = [:]
        for node in files.flatMap(\.nodes) {
            if let first = nodeNames[node.name.value] {
                log.error(
                    "duplicate node name '\(node.name.value)'; it is first defined at \(first)",
                    at: node.name.location)
                continue
            }
            nodeNames[node.name.value] = node.name.location
            var addresses: [Located<IPAddress>] = []
            for address in node.addresses {
                if let owner = addressOwners[address.value] {
                    log.error(
                        "address \(address.value) of node '\(node.name.value)' is already used by node "
                            + "'\(owner.node)' at \(owner.location)", at: address.location)
                    continue
                }
                addressOwners[address.value] = (node.name.value, address.location)
                addresses.append(address)
            }
            merged.nodes.append(
                SpecFile.Node(
                    name: node.name, addresses: addresses, labels: node.labels,
                    endpoint: node.endpoint))
        }

        var flowNames: [String: SourceLocation] = [:]
        for flow in files.flatMap(\.flows) {
            if let first = flowNames[flow.name.value] {
                log.error(
                    "duplicate flow name '\(flow.name.value)'; it is first defined at \(first)",
                    at: flow.name.location)
                continue
            }
            flowNames[flow.name.value] = flow.name.location
            merged.flows.append(flow)
        }
        return merged
    }

    /// The one value every file that sets `key` agrees on; logs each file that disagrees with the first.
    private static func agreed<Value: Equatable>(
        _ values: [Located<Value>], key: String,
        log: inout DiagnosticLog
    ) -> Value? {
        let ordered = values.sorted { $0.location < $1.location }
        guard let first = ordered.first else { return nil }
        for other in ordered.dropFirst() where other.value != first.value {
            log.error(
                "'\(key)' differs from the one at \(first.location); every file that sets '\(key)' must "
                    + "set it alike", at: other.location)
        }
        return first.value
    }
}
