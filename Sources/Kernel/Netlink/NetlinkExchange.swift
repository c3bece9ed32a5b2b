#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Request/acknowledgement bookkeeping over a `NetlinkTransport`: batches of acknowledged
/// requests, and dumps.
///
/// The kernel processes every message of a datagram during `sendmsg`, in order, each on its
/// own: a datagram that was sent has been executed in full, and each message's outcome is in
/// its acknowledgement, matched here by sequence number.
struct NetlinkExchange {
    let transport: any NetlinkTransport

    /// One datagram of requests, each sent with `NLM_F_ACK`.
    struct Batch {
        var datagram: [UInt8]
        var sequences: [UInt32]
    }

    /// What became of one request of a batch.
    enum Outcome: Hashable {
        /// The kernel's acknowledgement (errno 0: applied).
        case acknowledged(NetlinkAcknowledgement)
        /// The request never reached the kernel (its datagram could not be sent, or the socket
        /// had failed before it): it did not take effect.
        case unsent(reason: String)
        /// The datagram was sent, so the kernel executed the request, but its acknowledgement
        /// was lost: the outcome is unknown until the next dump.
        case unacknowledged(errno: Int32, reason: String)
    }

    /// How often an acknowledgement fence is retried after the receive queue overflowed.
    static let fenceAttempts = 3

    /// Sends `batches` in order and collects one outcome per sequence number. After the socket
    /// fails, later batches are not sent. Never throws: every failure is an outcome.
    func transact(_ batches: [Batch]) -> [UInt32: Outcome] {
        var outcomes: [UInt32: Outcome] = [:]
        var failure: NetlinkSocketError?
        for batch in batches {
            if let failure {
                for sequence in batch.sequences {
                    outcomes[sequence] = .unsent(reason: "the netlink socket failed earlier in the batch (\(failure))")
                }
                continue
            }
            do {
                try transport.send(batch.datagram)
            } catch {
                let socketError = error as? NetlinkSocketError ?? NetlinkSocketError("sendmsg", errno: EIO)
                failure = socketError
                for sequence in batch.sequences {
                    outcomes[sequence] = .unsent(reason: "\(socketError)")
                }
                continue
            }
            var pending = Set(batch.sequences)
            if let error = collect(&pending, into: &outcomes, until: nil) {
                if error.errno == ENOBUFS {
                    fence(&pending, into: &outcomes)
                } else {
                    failure = error
                }
                for sequence in pending {
                    outcomes[sequence] = .unacknowledged(
                        errno: error.errno,
                        reason:
                            "sent, but its acknowledgement was lost (\(error)); the next observation shows whether it took effect"
                    )
                }
            }
        }
        return outcomes
    }

    /// Receives acknowledgements until every pending request has one, or until the ack of
    /// `fence` arrives. Returns the socket error that stopped it, if any.
    private func collect(
        _ pending: inout Set<UInt32>, into outcomes: inout [UInt32: Outcome],
        until fence: UInt32?
    ) -> NetlinkSocketError? {
        while fence != nil || !pending.isEmpty {
            let messages: [NetlinkMessage]
            do {
                messages = try transport.receiveAcknowledgements()
            } catch {
                return error as? NetlinkSocketError ?? NetlinkSocketError("recvmsg", errno: EIO)
            }
            for message in messages where message.header.type == NetlinkHeader.error {
                let sequence = message.header.sequence
                if sequence == fence { return nil }
                guard pending.contains(sequence) else { continue }
                pending.remove(sequence)
                do {
                    outcomes[sequence] = .acknowledged(try NetlinkAcknowledgement(message))
                } catch {
                    outcomes[sequence] = .unacknowledged(
                        errno: EPROTO, reason: "the kernel's acknowledgement could not be decoded: \(error)")
                }
            }
        }
        return nil
    }

    /// After an overflow some acknowledgements are lost and some may still be queued: a no-op
    /// request with `NLM_F_ACK` marks the end of the queue; what has no ack by then is lost.
    private func fence(_ pending: inout Set<UInt32>, into outcomes: inout [UInt32: Outcome]) {
        for _ in 0..<Self.fenceAttempts {
            let sequence = transport.nextSequence()
            var buffer = NetlinkBuffer(capacity: NetlinkHeader.size)
            buffer.appendMessage(type: NetlinkHeader.noop, flags: NetlinkHeader.ack, sequence: sequence) { _ in }
            do {
                try transport.send(buffer.bytes)
            } catch {
                return
            }
            if collect(&pending, into: &outcomes, until: sequence) == nil { return }
        }
    }

    /// A dump failed: the errno and the kernel's text.
    struct DumpError: Error, Hashable, CustomStringConvertible {
        var errno: Int32
        var message: String

        var description: String { "\(ErrnoName.name(errno)): \(message)" }
    }

    /// How often a dump restarts after the kernel interrupted it (`NLM_F_DUMP_INTR`, the
    /// database changed during the dump) or the receive queue overflowed.
    static let dumpAttempts = 4

    /// Sends the dump request that `request` encodes for a sequence number and returns every
    /// message of the reply (without `NLMSG_DONE`). Restarts on interruption and overflow.
    func dump(_ request: (UInt32) -> [UInt8]) throws(DumpError) -> [NetlinkMessage] {
        var lastProblem = ""
        for _ in 0..<Self.dumpAttempts {
            let sequence = transport.nextSequence()
            do {
                try transport.send(request(sequence))
            } catch {
                let socketError = error as? NetlinkSocketError
                throw DumpError(errno: socketError?.errno ?? EIO, message: "\(error)")
            }
            var collected: [NetlinkMessage] = []
            var interrupted = false
            var overflowed = false
            receiving: while true {
                let messages: [NetlinkMessage]
                do {
                    messages = try transport.receive()
                } catch {
                    let socketError = error as? NetlinkSocketError ?? NetlinkSocketError("recvmsg", errno: EIO)
                    guard socketError.errno == ENOBUFS else {
                        throw DumpError(errno: socketError.errno, message: "\(socketError)")
                    }
                    // Part of the reply is lost: read on to this dump's end, then start again.
                    overflowed = true
                    lastProblem = "\(socketError)"
                    continue
                }
                for message in messages where message.header.sequence == sequence {
                    if message.header.flags & NetlinkHeader.dumpInterrupted != 0 { interrupted = true }
                    switch message.header.type {
                    case NetlinkHeader.done:
                        let status = (try? message.payload.int32(0, "NLMSG_DONE status")) ?? 0
                        if status < 0, status != Int32.min {
                            throw DumpError(errno: -status, message: "the kernel ended the dump with an error")
                        }
                        break receiving
                    case NetlinkHeader.error:
                        let ack: NetlinkAcknowledgement
                        do {
                            ack = try NetlinkAcknowledgement(message)
                        } catch {
                            throw DumpError(errno: EPROTO, message: "\(error)")
                        }
                        if ack.errno == 0 { break receiving }
                        throw DumpError(errno: ack.errno, message: ack.message ?? "the kernel refused the dump")
                    case NetlinkHeader.noop:
                        continue
                    default:
                        collected.append(message)
                    }
                }
            }
            if !interrupted && !overflowed { return collected }
            if interrupted { lastProblem = "the kernel's database changed during the dump (NLM_F_DUMP_INTR)" }
        }
        throw DumpError(errno: EAGAIN, message: "gave up after \(Self.dumpAttempts) attempts: \(lastProblem)")
    }
}
