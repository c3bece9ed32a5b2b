import MeshwardCore

/// A TCP port of this host exempted from IPsec in the SPD: what the agent installs for its own
/// listening port, so that its control port never depends on the SAs it manages even while no
/// process holds a socket there.
///
/// Per-socket bypass policies (`ControlSocketBypass`) exempt the agent's sockets only while
/// they exist. Between an agent's death and its restart, or before it first listens, a
/// controller's SYN toward the port met the host's channel policies instead: an inbound policy
/// that demands ESP from the controller's address dropped it (`XfrmInTmplMismatch`), so the
/// controller saw no answer at all and waited out its deadline instead of being refused at once.
/// The port bypass passes those segments to TCP, which refuses them (RST) when nothing listens.
///
/// Two policies per family, both action allow with no template, at a priority that takes
/// precedence over Meshward's channel policies: inbound, any source to the listening address
/// with TCP destination port `port`; outbound, from the listening address with TCP source port
/// `port` to anywhere. They carry no template, so they are foreign to every reader of Meshward's
/// state (ownership is the template's reqid): the planner never reports, changes or removes them,
/// and their selectors (protocol and port) are never a channel's. They stay when the agent exits,
/// on purpose: the port keeps answering with refusals until the agent is back.
public struct ControlPortBypass: Sendable, Hashable, CustomStringConvertible {
    /// The listening address, or nil when the agent listens on every address (then both
    /// families get the bypass with prefix /0).
    public let address: IPAddress?
    public let port: UInt16

    /// Above Meshward's channel policies (`SecurityPolicy.defaultPriority`, lower wins).
    public static let priority: UInt32 = 100

    public init(address: IPAddress?, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// The four or two selectors with their directions.
    public var policies: [(selector: PolicySelector, direction: PolicyDirection)] {
        let families: [AddressFamily] = address.map { [$0.family] } ?? [.ipv4, .ipv6]
        return families.flatMap { family -> [(selector: PolicySelector, direction: PolicyDirection)] in
            let local = address.map { IPPrefix(host: $0) } ?? .any(family)
            let anywhere = IPPrefix.any(family)
            return [
                (
                    PolicySelector(
                        source: anywhere, destination: local,
                        traffic: TrafficMatch(transport: .tcp, destinationPort: port)),
                    .inbound
                ),
                (
                    PolicySelector(
                        source: local, destination: anywhere, traffic: TrafficMatch(transport: .tcp, sourcePort: port)),
                    .outbound
                ),
            ]
        }
    }

    public var description: String { "tcp port \(port) of \(address.map { "\($0)" } ?? "every address")" }
}

extension XfrmCodec {
    /// Appends `XFRM_MSG_UPDPOLICY` for a bypass: `xfrm_userpolicy_info` with action allow, the
    /// given priority, unlimited lifetimes, and no `XFRMA_TMPL`.
    static func appendBypassPolicy(
        _ selector: PolicySelector, direction: PolicyDirection, priority: UInt32, flags: UInt16, sequence: UInt32,
        into buffer: inout NetlinkBuffer
    ) {
        buffer.appendMessage(type: updatePolicy, flags: flags, sequence: sequence) { body in
            let info = body.appendZeros(userpolicyInfoSize)
            setSelector(selector, into: &body, at: info)
            setUnlimitedLifetime(into: &body, at: info + 56)
            body.setUInt32(priority, at: info + 152)
            body.setUInt8(directionNumber(direction), at: info + 160)
            body.setUInt8(actionAllow, at: info + 161)
        }
    }
}

extension NetlinkKernel {
    /// Installs `bypass` (UPDPOLICY: created, or refreshed where it is already there). Throws
    /// `KernelError.transport` naming the policy the kernel refused.
    public func installControlPortBypass(_ bypass: ControlPortBypass, deadline: ContinuousClock.Instant) async throws {
        let node = self.node
        try await perform(until: deadline) { session in
            var buffer = NetlinkBuffer(capacity: 4096)
            var sequences: [UInt32] = []
            var described: [UInt32: String] = [:]
            for (selector, direction) in bypass.policies {
                let sequence = session.socket.nextSequence()
                XfrmCodec.appendBypassPolicy(
                    selector, direction: direction, priority: ControlPortBypass.priority,
                    flags: NetlinkHeader.request | NetlinkHeader.ack, sequence: sequence, into: &buffer)
                sequences.append(sequence)
                described[sequence] = "\(selector) dir \(direction) allow"
            }
            let results = session.exchange.transact([
                NetlinkExchange.Batch(datagram: buffer.bytes, sequences: sequences)
            ])
            for sequence in sequences {
                let what = described[sequence] ?? "bypass policy"
                switch results[sequence] {
                case .acknowledged(let ack) where ack.errno == 0:
                    continue
                case .acknowledged(let ack):
                    throw KernelError.transport(
                        node: node, operation: "install the control port bypass (\(what))", errno: ack.errno,
                        message: ack.message ?? "refused")
                case .unsent(let reason), .unacknowledged(_, let reason):
                    throw KernelError.transport(
                        node: node, operation: "install the control port bypass (\(what))", errno: nil,
                        message: reason)
                case nil:
                    throw KernelError.transport(
                        node: node, operation: "install the control port bypass (\(what))", errno: nil,
                        message: "no acknowledgement")
                }
            }
        }
    }
}
