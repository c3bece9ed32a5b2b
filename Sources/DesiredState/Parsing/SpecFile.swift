import MeshwardCore

/// What one spec file declares, before files are merged: values that passed their own checks,
/// each with where it was written.
struct SpecFile: Sendable {
    /// The `defaults` block as written: only the keys present are set.
    struct Defaults: Sendable, Equatable {
        var cipher: Cipher?
        var rekeyEvery: Duration?
        var rekeyPackets: UInt64?
        var drain: Duration?
        var enforcement: Enforcement?
        var endpoint: NodeEndpoint?
        /// `certificates.lifetime`: how long an agent certificate is valid.
        var certificateLifetime: Duration?
    }

    /// One entry of `nodes`.
    struct Node: Sendable {
        let name: Located<String>
        let addresses: [Located<IPAddress>]
        let labels: [String: String]
        let endpoint: NodeEndpoint?
    }

    /// One entry of `flows`.
    struct Flow: Sendable {
        let name: Located<String>
        let from: Located<LabelSelector>
        let to: Located<LabelSelector>
        /// The forward matches; nil when `ports` is absent (all traffic).
        let ports: [TrafficMatch]?
        let cipher: Located<Cipher>?
    }

    let path: String
    /// The top-level keys the file has, valid or not.
    var present: Set<String> = []
    var version: Located<Int>?
    var cluster: Located<String>?
    var reqid: Located<UInt32>?
    var defaults: Located<Defaults>?
    var nodes: [Node] = []
    var flows: [Flow] = []
}
