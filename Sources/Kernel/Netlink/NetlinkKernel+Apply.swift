#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import MeshwardCore

extension NetlinkKernel {
    /// Applies `operations` in order: NEWSA, DELSA, NEWPOLICY, UPDPOLICY, DELPOLICY, each with
    /// `NLM_F_ACK`, up to 256 messages or 64 KiB per `sendmsg`. Returns one result per
    /// operation, in order; a failed operation does not stop later ones.
    ///
    /// - An operation refused by the ownership rules fails with EPERM and is not sent.
    /// - An operation whose datagram could not be sent, or that came after the socket failed,
    ///   is `.notAttempted`: it did not take effect.
    /// - An operation that was sent but whose acknowledgement was lost fails with that errno
    ///   and a message saying the next observation will tell whether it took effect.
    ///
    /// Observes first when this kernel has not observed yet, so that refusals rest on what the
    /// node holds. Throws when that observation fails, or when no datagram could be sent at all.
    public func apply(_ operations: [KernelOperation]) async throws -> [OperationResult] {
        guard !operations.isEmpty else { return [] }
        let node = self.node
        let reqid = self.reqid
        let logger = self.logger
        return try await perform { session in
            if !session.ledger.hasObserved {
                _ = try Self.observe(session: session, node: node, reqid: reqid, logger: logger)
            }
            return try Self.apply(operations, session: session, node: node, reqid: reqid, logger: logger)
        }
    }

    /// Why the ownership rules refuse `operation`, or nil when it may be sent.
    static func refusal(of operation: KernelOperation, reqid: Reqid, ledger: OwnershipLedger) -> String? {
        switch operation {
        case .addSA(let sa):
            sa.reqid == reqid ? nil : "refusing to add an SA with reqid \(sa.reqid): this controller owns reqid \(reqid)"
        case .addPolicy(let policy), .updatePolicy(let policy):
            if policy.template.reqid != reqid {
                "refusing to write a policy with reqid \(policy.template.reqid): this controller owns reqid \(reqid)"
            } else if case .updatePolicy = operation, ledger.foreignPolicies.contains(policy.identifier) {
                "refusing to replace a foreign policy at \(policy.identifier)"
            } else {
                nil
            }
        case .deleteSA(let identifier):
            ledger.ownedSAs.contains(identifier)
                ? nil : "refusing to delete \(identifier): the last observation did not report it as Meshward's"
        case .deletePolicy(let identifier):
            ledger.ownedPolicies.contains(identifier)
                ? nil : "refusing to delete the policy \(identifier): the last observation did not report it as Meshward's"
        }
    }

    /// Sends `operations` in runs: operations that follow one another without an
    /// acknowledgement in between. A delete whose permission depends on an earlier operation of
    /// the same run (a delete of something added or deleted earlier in the batch) starts a new
    /// run, so that it is checked against acknowledged facts only.
    static func apply(_ operations: [KernelOperation], session: NetlinkSession, node: String, reqid: Reqid,
                      logger: Logger) throws -> [OperationResult] {
        var outcomes = [OperationOutcome?](repeating: nil, count: operations.count)
        var anySent = false
        var firstSendFailure: String?
        var start = 0
        while start < operations.count {
            // Pass 1: decide this run's members.
            var touchedSAs: Set<SAIdentifier> = []
            var touchedPolicies: Set<PolicyIdentifier> = []
            var end = start
            runs: while end < operations.count {
                switch operations[end] {
                case .deleteSA(let identifier):
                    if end > start, touchedSAs.contains(identifier) { break runs }
                    touchedSAs.insert(identifier)
                case .deletePolicy(let identifier):
                    if end > start, touchedPolicies.contains(identifier) { break runs }
                    touchedPolicies.insert(identifier)
                case .addSA(let sa):
                    touchedSAs.insert(sa.identifier)
                case .addPolicy(let policy), .updatePolicy(let policy):
                    touchedPolicies.insert(policy.identifier)
                }
                end += 1
            }
            // Pass 2: refuse, encode, send.
            var batches: [NetlinkExchange.Batch] = []
            var sequenceToIndex: [UInt32: Int] = [:]
            var buffer = NetlinkBuffer(capacity: bytesPerDatagram + 4096)
            var sequences: [UInt32] = []
            func flush() {
                guard !sequences.isEmpty else { return }
                batches.append(NetlinkExchange.Batch(datagram: buffer.bytes, sequences: sequences))
                buffer.removeAll()
                sequences.removeAll(keepingCapacity: true)
            }
            for index in start..<end {
                let operation = operations[index]
                if let reason = refusal(of: operation, reqid: reqid, ledger: session.ledger) {
                    outcomes[index] = .failed(errno: EPERM, message: reason)
                    continue
                }
                let sequence = session.socket.nextSequence()
                let mark = buffer.count
                do {
                    try encode(operation, sequence: sequence, into: &buffer)
                } catch {
                    buffer.truncate(to: mark)
                    outcomes[index] = .failed(errno: EINVAL, message: "\(error)")
                    continue
                }
                sequences.append(sequence)
                sequenceToIndex[sequence] = index
                if sequences.count >= messagesPerDatagram || buffer.count >= bytesPerDatagram { flush() }
            }
            flush()
            let results = session.exchange.transact(batches)
            for (sequence, result) in results {
                guard let index = sequenceToIndex[sequence] else { continue }
                let operation = operations[index]
                switch result {
                case .acknowledged(let ack):
                    anySent = true
                    if ack.errno == 0 {
                        outcomes[index] = .applied
                        session.ledger.recordEffect(of: operation, certain: true)
                    } else {
                        outcomes[index] = .failed(errno: ack.errno, message: ack.message)
                    }
                case .unsent(let reason):
                    firstSendFailure = firstSendFailure ?? reason
                    outcomes[index] = .notAttempted(reason: reason)
                case .unacknowledged(let errno, let reason):
                    anySent = true
                    outcomes[index] = .failed(errno: errno, message: reason)
                    session.ledger.recordEffect(of: operation, certain: false)
                }
            }
            start = end
        }
        if !anySent, let firstSendFailure {
            throw KernelError.transport(node: node, operation: "apply (sendmsg)", errno: nil, message: firstSendFailure)
        }
        var results: [OperationResult] = []
        results.reserveCapacity(operations.count)
        for (index, operation) in operations.enumerated() {
            let outcome = outcomes[index] ?? .notAttempted(reason: "no outcome was recorded")
            results.append(OperationResult(operation: operation, outcome: outcome))
            log(operation, outcome, node: node, logger: logger)
        }
        return results
    }

    private static func log(_ operation: KernelOperation, _ outcome: OperationOutcome, node: String, logger: Logger) {
        func metadata() -> Logger.Metadata {
            ["node": "\(node)", "operation": "\(operation.kind)", "target": "\(operation.target)"]
        }
        switch outcome {
        case .applied:
            logger.info("applied kernel operation", metadata: metadata())
        case .failed(let errno, let message):
            logger.notice("kernel operation failed", metadata: metadata().merging(
                ["errno": "\(ErrnoName.name(errno))", "kernel.message": "\(message ?? "")"]) { $1 })
        case .notAttempted(let reason):
            logger.notice("kernel operation not attempted", metadata: metadata().merging(["reason": "\(reason)"]) { $1 })
        }
    }

    /// Appends the message for `operation` with `NLM_F_REQUEST | NLM_F_ACK`.
    static func encode(_ operation: KernelOperation, sequence: UInt32, into buffer: inout NetlinkBuffer) throws {
        let flags = NetlinkHeader.request | NetlinkHeader.ack
        switch operation {
        case .addSA(let sa):
            try XfrmCodec.appendNewSA(sa, flags: flags, sequence: sequence, into: &buffer)
        case .deleteSA(let identifier):
            XfrmCodec.appendDeleteSA(identifier, flags: flags, sequence: sequence, into: &buffer)
        case .addPolicy(let policy):
            XfrmCodec.appendPolicy(policy, type: XfrmCodec.newPolicy, flags: flags, sequence: sequence, into: &buffer)
        case .updatePolicy(let policy):
            XfrmCodec.appendPolicy(policy, type: XfrmCodec.updatePolicy, flags: flags, sequence: sequence, into: &buffer)
        case .deletePolicy(let identifier):
            XfrmCodec.appendDeletePolicy(identifier, flags: flags, sequence: sequence, into: &buffer)
        }
    }
}
