import Testing

@testable import Kernel

#if canImport(Glibc)
import Glibc
#endif

/// A transport that acknowledges requests like the kernel (errno per sequence number as
/// scripted) and fails at a chosen point.
final class ScriptedTransport: NetlinkTransport {
    var sequence: UInt32 = 0
    var queue: [[UInt8]] = []
    var sends = 0
    /// Requests with these sequence numbers are refused with this errno.
    var refusals: [UInt32: Int32] = [:]
    /// The send with this index (0-based) fails with EBADF.
    var failingSend: Int?
    /// After this many acknowledgements have been received, receive fails with `receiveError`.
    var acknowledgementsBeforeFailure: Int?
    var receiveError: Int32 = ECONNRESET
    /// Acknowledgements of these sequence numbers are dropped, with one ENOBUFS reported.
    var lostAcknowledgements: Set<UInt32> = []
    private var overflowPending = false
    private var delivered = 0
    /// Canned dump replies, one datagram each.
    var dumpReplies: [[[UInt8]]] = []

    func nextSequence() -> UInt32 {
        sequence += 1
        return sequence
    }

    func send(_ datagram: [UInt8]) throws {
        defer { sends += 1 }
        if sends == failingSend { throw NetlinkSocketError("sendmsg", errno: EBADF) }
        let messages = try NetlinkMessage.split(datagram)
        if let first = messages.first, first.header.flags & NetlinkHeader.dump != 0 {
            let reply = dumpReplies.isEmpty ? [] : dumpReplies.removeFirst()
            queue.append(contentsOf: reply.map { Self.retag($0, sequence: first.header.sequence) })
            return
        }
        for message in messages {
            let sequence = message.header.sequence
            if lostAcknowledgements.contains(sequence) {
                overflowPending = true
                continue
            }
            queue.append(Self.acknowledgement(sequence: sequence, errno: refusals[sequence] ?? 0))
        }
    }

    func receive() throws -> [NetlinkMessage] {
        if overflowPending {
            overflowPending = false
            throw NetlinkSocketError("recvmsg", errno: ENOBUFS)
        }
        if let limit = acknowledgementsBeforeFailure, delivered >= limit {
            throw NetlinkSocketError("recvmsg", errno: receiveError)
        }
        guard !queue.isEmpty else { throw NetlinkSocketError("recvmsg", errno: EAGAIN) }
        delivered += 1
        return try NetlinkMessage.split(queue.removeFirst())
    }

    static func acknowledgement(sequence: UInt32, errno: Int32) -> [UInt8] {
        var buffer = NetlinkBuffer()
        buffer.appendMessage(type: NetlinkHeader.error, flags: NetlinkHeader.capped, sequence: sequence) { body in
            body.setUInt32(UInt32(bitPattern: -errno), at: body.appendZeros(4))
            let original = body.appendZeros(16)
            body.setUInt32(16, at: original)
            body.setUInt32(sequence, at: original + 8)
        }
        return buffer.bytes
    }

    static func retag(_ datagram: [UInt8], sequence: UInt32) -> [UInt8] {
        var bytes = datagram
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16
            withUnsafeBytes(of: sequence) { for index in 0..<4 { bytes[offset + 8 + index] = $0[index] } }
            offset += max(16, (length + 3) & ~3)
        }
        return bytes
    }

    static func dumpMessage(type: UInt16, flags: UInt16 = NetlinkHeader.multi, payload: [UInt8] = []) -> [UInt8] {
        var buffer = NetlinkBuffer()
        buffer.appendMessage(type: type, flags: flags, sequence: 0) { body in
            body.setBytes(payload, at: body.appendZeros(payload.count))
        }
        return buffer.bytes
    }
}

@Suite("netlink request/acknowledgement exchange")
struct NetlinkExchangeTests {
    /// Two batches of three requests each; sequence numbers 1...6.
    private func batches(_ transport: ScriptedTransport) -> [NetlinkExchange.Batch] {
        (0..<2).map { _ in
            var buffer = NetlinkBuffer()
            var sequences: [UInt32] = []
            for _ in 0..<3 {
                let sequence = transport.nextSequence()
                sequences.append(sequence)
                buffer.appendMessage(
                    type: XfrmCodec.newPolicy, flags: NetlinkHeader.request | NetlinkHeader.ack,
                    sequence: sequence
                ) { _ in }
            }
            return NetlinkExchange.Batch(datagram: buffer.bytes, sequences: sequences)
        }
    }

    private func errnos(_ outcomes: [UInt32: NetlinkExchange.Outcome]) -> [String] {
        (1...6).map { sequence in
            switch outcomes[UInt32(sequence)] {
            case .acknowledged(let ack)?: "ack \(ack.errno)"
            case .unsent?: "unsent"
            case .unacknowledged(let errno, _)?: "lost \(errno)"
            case nil: "none"
            }
        }
    }

    @Test("every request gets its own acknowledgement; a refusal does not stop later ones")
    func acknowledgements() {
        let transport = ScriptedTransport()
        transport.refusals = [2: EEXIST, 5: ENOENT]
        let outcomes = NetlinkExchange(transport: transport).transact(batches(transport))
        #expect(errnos(outcomes) == ["ack 0", "ack \(EEXIST)", "ack 0", "ack 0", "ack \(ENOENT)", "ack 0"])
        #expect(transport.sends == 2)
    }

    @Test("the socket dies after two acknowledgements: acked keep their outcome, the rest are unknown or unsent")
    func socketDiesMidBatch() {
        let transport = ScriptedTransport()
        transport.acknowledgementsBeforeFailure = 2
        let outcomes = NetlinkExchange(transport: transport).transact(batches(transport))
        #expect(errnos(outcomes) == ["ack 0", "ack 0", "lost \(ECONNRESET)", "unsent", "unsent", "unsent"])
        #expect(transport.sends == 1)
    }

    @Test("a failed sendmsg leaves its batch and every later one unsent")
    func sendFails() {
        let transport = ScriptedTransport()
        transport.failingSend = 1
        let outcomes = NetlinkExchange(transport: transport).transact(batches(transport))
        #expect(errnos(outcomes) == ["ack 0", "ack 0", "ack 0", "unsent", "unsent", "unsent"])
    }

    @Test("after a receive-queue overflow a fence finds exactly which acknowledgements were lost")
    func overflowFence() {
        let transport = ScriptedTransport()
        transport.lostAcknowledgements = [2]
        let outcomes = NetlinkExchange(transport: transport).transact(batches(transport))
        #expect(errnos(outcomes) == ["ack 0", "lost \(ENOBUFS)", "ack 0", "ack 0", "ack 0", "ack 0"])
    }

    @Test("a multi-part dump is collected until NLMSG_DONE, across datagrams")
    func multipartDump() throws {
        let transport = ScriptedTransport()
        let part = ScriptedTransport.dumpMessage(type: XfrmCodec.newPolicy, payload: [1, 2, 3, 4])
        transport.dumpReplies = [
            [part + part, part, ScriptedTransport.dumpMessage(type: NetlinkHeader.done, payload: [0, 0, 0, 0])]
        ]
        let messages = try NetlinkExchange(transport: transport).dump { sequence in
            var buffer = NetlinkBuffer()
            XfrmCodec.appendDumpPolicies(sequence: sequence, into: &buffer)
            return buffer.bytes
        }
        #expect(messages.count == 3)
    }

    @Test("an interrupted dump is restarted")
    func interruptedDump() throws {
        let transport = ScriptedTransport()
        let part = ScriptedTransport.dumpMessage(type: XfrmCodec.newPolicy, payload: [1, 2, 3, 4])
        let interrupted = ScriptedTransport.dumpMessage(
            type: XfrmCodec.newPolicy,
            flags: NetlinkHeader.multi | NetlinkHeader.dumpInterrupted, payload: [9])
        let done = ScriptedTransport.dumpMessage(type: NetlinkHeader.done, payload: [0, 0, 0, 0])
        transport.dumpReplies = [[part, interrupted, done], [part, done]]
        let messages = try NetlinkExchange(transport: transport).dump { sequence in
            var buffer = NetlinkBuffer()
            XfrmCodec.appendDumpSAs(sequence: sequence, into: &buffer)
            return buffer.bytes
        }
        #expect(messages.count == 1)
        #expect(transport.sends == 2)
    }

    @Test("a refused dump reports the errno")
    func refusedDump() {
        let transport = ScriptedTransport()
        transport.dumpReplies = [[ScriptedTransport.acknowledgement(sequence: 0, errno: EPERM)]]
        #expect(throws: NetlinkExchange.DumpError(errno: EPERM, message: "the kernel refused the dump")) {
            try NetlinkExchange(transport: transport).dump { _ in
                var buffer = NetlinkBuffer()
                XfrmCodec.appendDumpSAs(sequence: 1, into: &buffer)
                return buffer.bytes
            }
        }
    }
}
