import Logging
import MeshwardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension NetlinkKernel {
    /// Applies `operations` in order: NEWSA, DELSA, NEWPOLICY, UPDPOLICY, DELPOLICY, each with
    /// `NLM_F_ACK`, up to 256 messages or 64 KiB per `sendmsg`. Returns one result per
    /// operation, in order; a failed operation does not stop later ones.
    ///
    /// - An operation refused by the ownership rules is not sent: a write of another reqid
    ///   fails EPERM; a delete of an object not observed as Meshward's fails ESRCH or ENOENT,
    ///   as for a missing object; an update over a foreign policy fails EEXIST.
    /// - An operation whose datagram could not be sent, or that came after the socket failed,
    ///   is `.notAttempted`: it did not take effect.
    /// - An operation that was sent but whose acknowledgement was lost is `.indeterminate`: the
    ///   next observation tells whether it took effect.
    ///
    /// Observes first when this kernel has not observed yet, so that refusals rest on what the
    /// node holds. Throws when that observation fails, or when no datagram could be sent at all.
    public func apply(
        _ operations: [KernelOperation], deadline: ContinuousClock.Instant
    ) async throws
        -> [OperationResult]
    {
        guard !operations.isEmpty else { return [] }
        let node = self.node
        let reqid = self.reqid
        let logger = self.logger
        return try await perform(until: deadline) { session in
            if !session.ledger.hasObserved {
                _ = try Self.observe(session: session, node: node, reqid: reqid, logger: logger)
            }
            return try Self.apply(operations, session: session, node: node, reqid: reqid, logger: logger)
        }
    }

    /// The outcome the ownership rules give `operation` without sending it, or nil when it may
    /// be sent.
    ///
    /// A write of another reqid fails with EPERM. A delete of anything the ledger does not hold
    /// as Meshward's fails as the kernel would fail a delete of a missing object (ESRCH for an
    /// SA, ENOENT for a policy): from the owner's view it does not exist, and a foreign object
    /// there is left alone. An update of a selector a foreign policy holds fails EEXIST, as
    /// NEWPOLICY would.
    static func refusal(of operation: KernelOperation, reqid: Reqid, ledger: OwnershipLedger) -> OperationOutcome? {
        switch operation {
        case .addSA(let sa):
            guard sa.reqid != reqid else { return nil }
            return .failed(
                errno: EPERM,
                message: "refusing to add an SA with reqid \(sa.reqid): this controller owns reqid \(reqid)")
        case .addPolicy(let policy), .updatePolicy(let policy):
            if policy.template.reqid != reqid {
                return .failed(
                    errno: EPERM,
                    message: "refusing to write a policy with reqid \(policy.template.reqid): "
                        + "this controller owns reqid \(reqid)")
            }
            if case .updatePolicy = operation, ledger.foreignPolicies.contains(policy.identifier) {
                return .failed(
                    errno: EEXIST, message: "a foreign policy holds \(policy.identifier); it is left alone")
            }
            return nil
        case .deleteSA(let identifier):
            guard !ledger.ownedSAs.contains(identifier) else { return nil }
            return .failed(
                errno: ESRCH,
                message: "no SA \(identifier) with reqid \(reqid) (the last observation showed none; "
                    + "a foreign SA there is left alone)")
        case .deletePolicy(let identifier):
            guard !ledger.ownedPolicies.contains(identifier) else { return nil }
            return .failed(
                errno: ENOENT,
                message: "no policy \(identifier) with reqid \(reqid) (the last observation showed none; "
                    + "a foreign policy there is left alone)")
        }
    }

    /// Sends `operations` in runs: operations that follow one another without an
    /// acknowledgement in between. A delete or update whose permission depends on an earlier
    /// operation of the same run (one that touches an object added, updated or deleted earlier
    /// in the batch) starts a new run, so that it is checked against acknowledged facts only.
    ///
    /// An update of a policy that the ledger does not hold as Meshward's travels as NEWPOLICY:
    /// the kernel inserts it where the selector is free and refuses (EEXIST) where anything
    /// holds it, so a foreign policy that appeared since the last observation is never replaced.
    static func apply(
        _ operations: [KernelOperation], session: NetlinkSession, node: String, reqid: Reqid,
        logger: Logger
    ) throws -> [OperationResult] {
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
                case .updatePolicy(let policy):
                    if end > start, touchedPolicies.contains(policy.identifier) { break runs }
                    touchedPolicies.insert(policy.identifier)
                case .addSA(let sa):
                    touchedSAs.insert(sa.identifier)
                case .addPolicy(let policy):
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
                if let refused = refusal(of: operation, reqid: reqid, ledger: session.ledger) {
                    outcomes[index] = refused
                    continue
                }
                let sequence = session.socket.nextSequence()
                let mark = buffer.count
                do {
                    var exclusive = false
                    if case .updatePolicy(let policy) = operation {
                        exclusive = !session.ledger.ownedPolicies.contains(policy.identifier)
                    }
                    try encode(operation, sequence: sequence, exclusive: exclusive, into: &buffer)
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
                    outcomes[index] = .indeterminate(reason: "\(reason) (\(ErrnoName.name(errno)))")
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
            logger.notice(
                "kernel operation failed",
                metadata: metadata().merging(
                    ["errno": "\(ErrnoName.name(errno))", "kernel.message": "\(message ?? "")"]) { $1 })
        case .notAttempted(let reason):
            logger.notice(
                "kernel operation not attempted", metadata: metadata().merging(["reason": "\(reason)"]) { $1 })
        case .indeterminate(let reason):
            logger.warning(
                "kernel operation sent, answer lost", metadata: metadata().merging(["reason": "\(reason)"]) { $1 })
        }
    }

    /// Appends the message for `operation` with `NLM_F_REQUEST | NLM_F_ACK`. With `exclusive`,
    /// an update travels as NEWPOLICY (insert only).
    static func encode(
        _ operation: KernelOperation, sequence: UInt32, exclusive: Bool = false, into buffer: inout NetlinkBuffer
    ) throws {
        let flags = NetlinkHeader.request | NetlinkHeader.ack
        switch operation {
        case .addSA(let sa):
            try XfrmCodec.appendNewSA(sa, flags: flags, sequence: sequence, into: &buffer)
        case .deleteSA(let identifier):
            XfrmCodec.appendDeleteSA(identifier, flags: flags, sequence: sequence, into: &buffer)
        case .addPolicy(let policy):
            XfrmCodec.appendPolicy(policy, type: XfrmCodec.newPolicy, flags: flags, sequence: sequence, into: &buffer)
        case .updatePolicy(let policy):
            let type = exclusive ? XfrmCodec.newPolicy : XfrmCodec.updatePolicy
            XfrmCodec.appendPolicy(policy, type: type, flags: flags, sequence: sequence, into: &buffer)
        case .deletePolicy(let identifier):
            XfrmCodec.appendDeletePolicy(identifier, flags: flags, sequence: sequence, into: &buffer)
        }
    }
}
