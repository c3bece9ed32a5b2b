import Foundation

/// What the controller last learnt of one node's agent in a pass: where it answered, until when
/// its certificate is valid, which boot it reported, and when. Kept in the Store so that
/// `status`, a separate command, can show it for an agent it cannot reach now.
public struct AgentContact: Codable, Sendable, Hashable {
    public var node: String
    /// `HOST:PORT` dialled (`[IPV6]:PORT`).
    public var address: String
    /// The end of the validity of the certificate the agent presented; nil when not seen.
    public var certificateNotValidAfter: Date?
    /// The boot ID of the host in its last observation; nil when it reported none.
    public var bootID: String?
    /// When the pass that last observed it began.
    public var lastContact: Date

    public init(node: String, address: String, certificateNotValidAfter: Date?, bootID: String?, lastContact: Date) {
        self.node = node
        self.address = address
        self.certificateNotValidAfter = certificateNotValidAfter
        self.bootID = bootID
        self.lastContact = lastContact
    }
}
