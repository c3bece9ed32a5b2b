import MeshwardCore
import Yams

/// Turns one composed YAML document into a `SpecFile`, logging every problem it finds.
///
/// It checks what can be checked within one file: keys, types, names, addresses, durations,
/// ports, ciphers. What needs the whole spec (duplicates across files, selectors, cipher
/// conflicts) is left to `SpecMerger` and `FleetCompiler`.
struct SpecFileParser {
    let path: String
    var log: DiagnosticLog

    static let topLevelKeys = ["version", "cluster", "reqid", "defaults", "nodes", "flows"]
    static let defaultsKeys = ["cipher", "rekey", "drain", "enforcement", "endpoint", "certificates"]
    static let rekeyKeys = ["every", "packets"]
    static let certificatesKeys = ["lifetime"]
    static let nodeKeys = ["name", "addresses", "labels", "endpoint"]
    static let flowKeys = ["name", "from", "to", "ports", "cipher"]

    init(path: String, log: DiagnosticLog) {
        self.path = path
        self.log = log
    }

    // MARK: Top level

    mutating func parse(_ root: Node) -> SpecFile {
        var file = SpecFile(path: path)
        guard let entries = mapping(root, allowed: Self.topLevelKeys, what: "the top level of a spec file") else {
            return file
        }
        file.present = Set(entries.keys)
        if let entry = entries["version"] {
            let location = self.location(entry.value)
            if let version = integer(entry.value, what: "'version'") {
                if version == 1 {
                    file.version = Located(value: version, location: location)
                } else {
                    log.error("unsupported spec version \(version); this Meshward reads version 1", at: location)
                }
            }
        }
        if let entry = entries["cluster"], let cluster = string(entry.value, what: "'cluster'") {
            if cluster.isEmpty {
                log.error("'cluster' must be a non-empty name", at: location(entry.value))
            } else if let hidden = SpecName.hiddenCharacter(in: cluster) {
                log.error(SpecName.hiddenCharacterMessage("'cluster'", hidden), at: location(entry.value))
            } else {
                file.cluster = Located(value: cluster, location: location(entry.value))
            }
        }
        if let entry = entries["reqid"], let reqid = integer(entry.value, what: "'reqid'") {
            if reqid >= 1 && reqid <= Int(UInt32.max) {
                file.reqid = Located(value: UInt32(reqid), location: location(entry.value))
            } else {
                log.error("'reqid' must be between 1 and 0xffffffff, found \(reqid)", at: location(entry.value))
            }
        }
        if let entry = entries["defaults"], let defaults = parseDefaults(entry.value) {
            file.defaults = Located(value: defaults, location: location(entry.key))
        }
        if let entry = entries["nodes"], let items = sequence(entry.value, what: "'nodes'") {
            file.nodes = items.compactMap { parseNode($0) }
        }
        if let entry = entries["flows"], let items = sequence(entry.value, what: "'flows'") {
            file.flows = items.compactMap { parseFlow($0) }
        }
        return file
    }

    // MARK: Defaults

    private mutating func parseDefaults(_ node: Node) -> SpecFile.Defaults? {
        guard let entries = mapping(node, allowed: Self.defaultsKeys, what: "'defaults'") else { return nil }
        var defaults = SpecFile.Defaults()
        var valid = true
        if let entry = entries["cipher"] {
            defaults.cipher = cipher(entry.value)
            valid = valid && defaults.cipher != nil
        }
        if let entry = entries["rekey"] {
            if let rekey = mapping(entry.value, allowed: Self.rekeyKeys, what: "'rekey'") {
                if let every = rekey["every"] {
                    defaults.rekeyEvery = duration(every.value, what: "'rekey.every'", allowZero: false)
                    valid = valid && defaults.rekeyEvery != nil
                }
                if let packets = rekey["packets"] {
                    defaults.rekeyPackets = packetCount(packets.value)
                    valid = valid && defaults.rekeyPackets != nil
                }
            } else {
                valid = false
            }
        }
        if let entry = entries["drain"] {
            defaults.drain = duration(entry.value, what: "'drain'", allowZero: true)
            valid = valid && defaults.drain != nil
        }
        if let entry = entries["enforcement"], let text = string(entry.value, what: "'enforcement'") {
            defaults.enforcement = Enforcement(rawValue: text)
            if defaults.enforcement == nil {
                log.error("unknown enforcement '\(text)'; use 'required' or 'permissive'", at: location(entry.value))
                valid = false
            }
        } else if entries["enforcement"] != nil {
            valid = false
        }
        if let entry = entries["endpoint"] {
            defaults.endpoint = endpoint(entry.value)
            valid = valid && defaults.endpoint != nil
        }
        if let entry = entries["certificates"] {
            if let certificates = mapping(entry.value, allowed: Self.certificatesKeys, what: "'certificates'") {
                if let lifetime = certificates["lifetime"] {
                    defaults.certificateLifetime = certificateLifetime(lifetime.value)
                    valid = valid && defaults.certificateLifetime != nil
                }
            } else {
                valid = false
            }
        }
        return valid ? defaults : nil
    }

    // MARK: Nodes

    private mutating func parseNode(_ node: Node) -> SpecFile.Node? {
        guard let entries = mapping(node, allowed: Self.nodeKeys, what: "a node") else { return nil }
        guard let nameEntry = entries["name"] else {
            log.error("a node needs a 'name'", at: location(node))
            return nil
        }
        guard let name = string(nameEntry.value, what: "a node's 'name'") else { return nil }
        guard SpecName.isValid(name) else {
            log.error("invalid node name '\(name)': \(SpecName.rule)", at: location(nameEntry.value))
            return nil
        }
        var addresses: [Located<IPAddress>] = []
        if let entry = entries["addresses"] {
            if let items = sequence(entry.value, what: "'addresses' of node '\(name)'") {
                if items.isEmpty || items.count > 2 {
                    log.error(
                        "node '\(name)' must have 1 or 2 addresses (one IPv4, one IPv6), found \(items.count)",
                        at: location(entry.value))
                }
                for item in items {
                    guard let address = address(item, node: name) else { continue }
                    if let twin = addresses.first(where: { $0.value.family == address.value.family }) {
                        if twin.value == address.value {
                            log.error("node '\(name)' lists address \(address.value) twice", at: address.location)
                        } else {
                            log.error(
                                "node '\(name)' has a second \(familyName(address.value.family)) address "
                                    + "\(address.value) (first: \(twin.value) at \(twin.location)); a node has at most "
                                    + "one address per family, since each channel is per family", at: address.location)
                        }
                        continue
                    }
                    addresses.append(address)
                }
            }
        } else {
            log.error("node '\(name)' needs 'addresses' (one IPv4 and/or one IPv6 address)", at: location(node))
        }
        var labels: [String: String] = [:]
        if let entry = entries["labels"],
            let pairs = mapping(entry.value, allowed: nil, what: "'labels' of node '\(name)'")
        {
            for (key, pair) in pairs {
                guard let value = string(pair.value, what: "label '\(key)' of node '\(name)'") else { continue }
                if key.isEmpty {
                    log.error("node '\(name)' has an empty label key", at: location(pair.key))
                    continue
                }
                if let hidden = SpecName.hiddenCharacter(in: key) {
                    log.error(
                        SpecName.hiddenCharacterMessage("a label key of node '\(name)'", hidden), at: location(pair.key)
                    )
                    continue
                }
                if let hidden = SpecName.hiddenCharacter(in: value) {
                    log.error(
                        SpecName.hiddenCharacterMessage("label '\(key)' of node '\(name)'", hidden),
                        at: location(pair.value))
                    continue
                }
                labels[key] = value
            }
        }
        var nodeEndpoint: NodeEndpoint?
        if let entry = entries["endpoint"] {
            nodeEndpoint = endpoint(entry.value)
        }
        return SpecFile.Node(
            name: Located(value: name, location: location(nameEntry.value)), addresses: addresses,
            labels: labels, endpoint: nodeEndpoint)
    }

    private mutating func address(_ node: Node, node name: String) -> Located<IPAddress>? {
        let where_ = location(node)
        guard case .scalar(let scalar) = node, node.tagName != .null else {
            log.error(
                "an address of node '\(name)' must be a string like 198.18.1.10 or \"2001:db8::10\", "
                    + "found \(describe(node))", at: where_)
            return nil
        }
        let text = scalar.string
        if text.contains("%") {
            log.error(
                "address '\(text)' of node '\(name)' has a zone; zones are not allowed, give a global "
                    + "unicast address", at: where_)
            return nil
        }
        if text.contains("/") {
            log.error(
                "address '\(text)' of node '\(name)' is a prefix; give the node's own address without "
                    + "a length", at: where_)
            return nil
        }
        guard let address = IPAddress(text) else {
            log.error("'\(text)' of node '\(name)' is not an IPv4 or IPv6 address", at: where_)
            return nil
        }
        let problem: String? =
            if address.isUnspecified { "is the unspecified address" } else if address.isLoopback {
                "is a loopback address"
            } else if address.isMulticast { "is a multicast address" } else if address.isLimitedBroadcast {
                "is the broadcast address"
            } else if address.isIPv4Mapped {
                "is an IPv4-mapped IPv6 address (give the IPv4 address itself)"
            } else if !address.isUnicastHost { "is not a unicast host address" } else { nil }
        if let problem {
            log.error(
                "address \(text) of node '\(name)' \(problem); a node needs a unicast host address",
                at: where_)
            return nil
        }
        return Located(value: address, location: where_)
    }

    // MARK: Flows

    private mutating func parseFlow(_ node: Node) -> SpecFile.Flow? {
        guard let entries = mapping(node, allowed: Self.flowKeys, what: "a flow") else { return nil }
        guard let nameEntry = entries["name"] else {
            log.error("a flow needs a 'name'", at: location(node))
            return nil
        }
        guard let name = string(nameEntry.value, what: "a flow's 'name'") else { return nil }
        guard SpecName.isValid(name) else {
            log.error("invalid flow name '\(name)': \(SpecName.rule)", at: location(nameEntry.value))
            return nil
        }
        var valid = true
        func side(_ key: String) -> Located<LabelSelector>? {
            guard let entry = entries[key] else {
                log.error("flow '\(name)' needs '\(key)', a label selector such as { tier: web }", at: location(node))
                return nil
            }
            return selector(entry.value, flow: name, side: key)
        }
        let from = side("from")
        let to = side("to")
        var ports: [TrafficMatch]?
        if let entry = entries["ports"], let items = sequence(entry.value, what: "'ports' of flow '\(name)'") {
            if items.isEmpty {
                log.error(
                    "flow '\(name)' has an empty 'ports' list; remove 'ports' to protect all traffic",
                    at: location(entry.value))
                valid = false
            }
            var matches: [TrafficMatch] = []
            for item in items {
                guard let text = string(item, what: "a port of flow '\(name)'") else {
                    valid = false
                    continue
                }
                switch PortSpec.parse(text) {
                case .success(let match): matches.append(match)
                case .failure(let error):
                    log.error(error.message, at: location(item))
                    valid = false
                }
            }
            ports = matches
        } else if entries["ports"] != nil {
            valid = false
        }
        var flowCipher: Located<Cipher>?
        if let entry = entries["cipher"] {
            guard let value = cipher(entry.value) else { return nil }
            flowCipher = Located(value: value, location: location(entry.value))
        }
        guard valid, let from, let to else { return nil }
        return SpecFile.Flow(
            name: Located(value: name, location: location(nameEntry.value)), from: from, to: to,
            ports: ports, cipher: flowCipher)
    }

    private mutating func selector(_ node: Node, flow: String, side: String) -> Located<LabelSelector>? {
        guard let pairs = mapping(node, allowed: nil, what: "'\(side)' of flow '\(flow)'") else { return nil }
        var requirements: [String: String] = [:]
        var valid = true
        for (key, pair) in pairs {
            guard let value = string(pair.value, what: "selector label '\(key)' of flow '\(flow)'") else {
                valid = false
                continue
            }
            if let hidden = SpecName.hiddenCharacter(in: key + value) {
                log.error(
                    SpecName.hiddenCharacterMessage(
                        "selector label '\(SpecName.escaped(key))' of flow '\(flow)'", hidden),
                    at: location(SpecName.hiddenCharacter(in: key) != nil ? pair.key : pair.value))
                valid = false
                continue
            }
            requirements[key] = value
        }
        return valid ? Located(value: LabelSelector(requirements: requirements), location: location(node)) : nil
    }

    // MARK: Values

    private mutating func cipher(_ node: Node) -> Cipher? {
        guard let text = string(node, what: "'cipher'") else { return nil }
        guard let cipher = Cipher(rawValue: text) else {
            let valid = Cipher.allCases.map(\.rawValue).joined(separator: ", ")
            log.error("unknown cipher '\(text)'; use one of \(valid)", at: location(node))
            return nil
        }
        return cipher
    }

    private mutating func duration(_ node: Node, what: String, allowZero: Bool) -> Duration? {
        if case .scalar(let scalar) = node, node.tagName == .int || node.tagName == .float {
            // A bare number: quoting it would only move the error, so say what is missing.
            let message =
                node.tagName == .int
                ? "\(what) needs a unit: write '\(scalar.string)s' (or with d, h, m or ms), found the number "
                    + scalar.string
                : "\(what) needs a unit, and fractions are not supported: combine units instead, e.g. '1h30m', "
                    + "found the number \(scalar.string)"
            log.error(message, at: location(node))
            return nil
        }
        guard let text = string(node, what: what, hint: " like '24h', '90s' or '1h30m'") else { return nil }
        switch SpecDuration.parse(text) {
        case .success(let value):
            if !allowZero && value == .zero {
                log.error("\(what) must be longer than zero, found '\(text)'", at: location(node))
                return nil
            }
            return value
        case .failure(let error):
            log.error("\(error.message) in \(what); write e.g. '90s', '5m', '24h', '7d' or '1h30m'", at: location(node))
            return nil
        }
    }

    /// `certificates.lifetime`: a duration from `FleetIntent.certificateLifetimeRange`.
    private mutating func certificateLifetime(_ node: Node) -> Duration? {
        guard let value = duration(node, what: "'certificates.lifetime'", allowZero: false) else { return nil }
        let range = FleetIntent.certificateLifetimeRange
        guard range.contains(value) else {
            log.error(
                "'certificates.lifetime' must be at least 1h and at most 365d, found '\(SpecDuration.format(value))'",
                at: location(node))
            return nil
        }
        return value
    }

    private mutating func packetCount(_ node: Node) -> UInt64? {
        guard case .scalar(let scalar) = node, node.tagName == .int else {
            log.error("'rekey.packets' must be a positive integer, found \(describe(node))", at: location(node))
            return nil
        }
        let digits = String(scalar.string.filter { $0 != "_" })
        if let count = UInt64(digits), count > 0 { return count }
        if let count = node.int, count > 0 { return UInt64(count) }
        let unsigned = digits.hasPrefix("+") ? String(digits.dropFirst()) : digits
        if !unsigned.isEmpty, unsigned.allSatisfy({ $0.isASCII && $0.isNumber }),
            unsigned.contains(where: { $0 != "0" })
        {
            log.error(
                "'rekey.packets' is too large: at most \(UInt64.max), found \(scalar.string)", at: location(node))
            return nil
        }
        log.error("'rekey.packets' must be a positive integer, found \(scalar.string)", at: location(node))
        return nil
    }

    private mutating func endpoint(_ node: Node) -> NodeEndpoint? {
        guard let text = string(node, what: "'endpoint'") else { return nil }
        guard let endpoint = NodeEndpoint(text) else {
            log.error(
                "unknown endpoint '\(text)'; use 'sim', 'local', 'netns:NAME' (NAME of letters, digits, "
                    + "'.', '_', '-'), 'agent' or 'agent:HOST[:PORT]' (IPv6 as '[ADDRESS]:PORT')", at: location(node))
            return nil
        }
        return endpoint
    }

    // MARK: Shapes

    /// The entries of a mapping by key text; logs a type error, non-string keys and unknown keys.
    /// `allowed` nil accepts any key.
    private mutating func mapping(
        _ node: Node, allowed: [String]?, what: String
    )
        -> [String: (key: Node, value: Node)]?
    {
        guard case .mapping(let mapping) = node else {
            log.error("\(what) must be a mapping, found \(describe(node))", at: location(node))
            return nil
        }
        var entries: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                log.error("keys in \(what) must be strings, found \(describe(key))", at: location(key))
                continue
            }
            let text = scalar.string
            if let allowed, !allowed.contains(text) {
                log.error(
                    "unknown key '\(text)' in \(what); allowed keys: \(allowed.joined(separator: ", "))",
                    at: location(key))
                continue
            }
            entries[text] = (key, value)
        }
        return entries
    }

    private mutating func sequence(_ node: Node, what: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            log.error("\(what) must be a list, found \(describe(node))", at: location(node))
            return nil
        }
        return Array(sequence)
    }

    private mutating func string(_ node: Node, what: String, hint: String = "") -> String? {
        guard case .scalar(let scalar) = node else {
            log.error("\(what) must be a string\(hint), found \(describe(node))", at: location(node))
            return nil
        }
        guard node.isStringScalar else {
            log.error(
                "\(what) must be a string\(hint), found \(describe(node)); quote it: \"\(scalar.string)\"",
                at: location(node))
            return nil
        }
        return scalar.string
    }

    private mutating func integer(_ node: Node, what: String) -> Int? {
        guard case .scalar(let scalar) = node, node.tagName == .int else {
            log.error("\(what) must be an integer, found \(describe(node))", at: location(node))
            return nil
        }
        guard let value = node.int else {
            log.error("\(what) is out of range, found \(scalar.string)", at: location(node))
            return nil
        }
        return value
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return "nothing (null)"
            case .int: return "the integer \(scalar.string)"
            case .float: return "the number \(scalar.string)"
            case .bool: return "the boolean \(scalar.string)"
            case .timestamp: return "the date \(scalar.string)"
            case .str: return "the string '\(scalar.string)'"
            default: return "'\(scalar.string)' (tagged \(node.tagName.rawValue))"
            }
        }
    }

    private func familyName(_ family: AddressFamily) -> String { family == .ipv4 ? "IPv4" : "IPv6" }

    func location(_ node: Node) -> SourceLocation { SourceLocation(file: path, mark: node.mark) }
}
