import Foundation

/// What a controller does with a node's agent besides observing and applying: the connection's
/// facts for `status` and the Store's contact records, the ready mark, and the certificate
/// renewal. The controller reaches it by node (`AgentConnectionPool.link(for:)`), never by
/// casting a kernel.
public protocol AgentLink: Sendable {
    var node: String { get }
    /// `HOST:PORT` dialled.
    var address: String { get }
    /// What the connection's last handshake negotiated, read off the wire; nil before one.
    var negotiatedTLS: TLSNegotiation? { get }
    /// When the certificate the agent presented at the last accepted handshake is valid.
    var certificateValidity: ClosedRange<Date>? { get }
    /// When that certificate expires.
    var certificateNotValidAfter: Date? { get }
    /// Whether the last handshake refused the agent's certificate because the cluster CA this
    /// controller trusts did not issue it (a joining agent's provisional certificate excepted):
    /// the agent was enrolled by another CA.
    var presentedAnotherCA: Bool { get }
    /// Tells the agent every channel is established for boot `bootID`; false when it booted again.
    func markReady(bootID: String, deadline: ContinuousClock.Instant) async throws -> Bool
    /// Renews the agent's certificate over the connection (`AgentKernel.renewCertificate`).
    func renewCertificate(
        deadline: ContinuousClock.Instant, issue: @Sendable ([UInt8]) async throws -> [UInt8]
    ) async throws -> Date
}

extension AgentKernel: AgentLink {}
