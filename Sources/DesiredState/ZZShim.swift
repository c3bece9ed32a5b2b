// TEMPORARY SHIM (removed at merge)
import MeshwardCore
public struct FleetIntent: Sendable, Hashable {
    public let cluster: String; public let reqid: UInt32; public let nodes: [NodeIntent]; public let channels: [ChannelIntent]; public let flowCount: Int; public let revision: String
    public func node(named: String) -> NodeIntent? { nil }
    public func channel(_ id: ChannelID) -> ChannelIntent? { nil }
}
public struct NodeIntent: Sendable, Hashable { public let name: String; public let addresses: [IPAddress]; public let labels: [String: String]; public let endpoint: NodeEndpoint; public func address(for family: AddressFamily) -> IPAddress? { nil } }
public enum NodeEndpoint: Sendable, Hashable { case sim, local, namespace(String) }
public struct ChannelIntent: Sendable, Hashable { public let id: ChannelID; public let source: IPAddress; public let destination: IPAddress; public let traffic: [TrafficMatch]; public let cipher: Cipher; public let rekey: RekeyPolicy; public let drain: Duration; public let enforcement: Enforcement; public let flows: [String] }
public struct RekeyPolicy: Sendable, Hashable { public let every: Duration; public let packets: UInt64? }
public enum Enforcement: String, Sendable, Hashable { case required, permissive }
public struct SpecLoader { public init() {}; public func load(paths: [String]) -> SpecLoadResult { fatalError() } }
public struct SpecLoadResult: Sendable { public let intent: FleetIntent?; public let diagnostics: [Diagnostic] }
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible { public enum Severity: String, Sendable { case error, warning }; public let severity: Severity; public let file: String; public let line: Int; public let column: Int; public let message: String; public var description: String { "" } }
