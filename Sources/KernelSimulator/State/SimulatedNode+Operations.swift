import Kernel
import MeshwardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SimulatedNode {
    /// Applies one operation as the node's kernel would, after the node's pending faults have
    /// had their say. With `owner` set, operations that would change or delete an object of
    /// another reqid are refused (the view a `NodeKernel` gives its owner).
    mutating func receive(_ operation: KernelOperation, owner: Reqid?, now: UInt64) -> OperationOutcome {
        guard isReachable else {
            return .notAttempted(reason: "node \(name) is not answering")
        }
        faults.operationsReceived += 1
        defer {
            if let left = faults.answersLeft {
                faults.answersLeft = left - 1
                if left - 1 <= 0 {
                    faults.answersLeft = nil
                    isReachable = false
                }
            }
        }
        if let index = faults.failures.firstIndex(where: { $0.operation == faults.operationsReceived }) {
            let failure = faults.failures.remove(at: index)
            return .failed(errno: failure.errno, message: "injected fault")
        }
        if let owner, let refusal = ownershipRefusal(of: operation, owner: owner) {
            return refusal
        }
        return applyToDatabases(operation, now: now)
    }

    /// Why `owner` may not perform `operation`, or nil when it may: it names a foreign object
    /// or writes an object with another reqid.
    func ownershipRefusal(of operation: KernelOperation, owner: Reqid) -> OperationOutcome? {
        switch operation {
        case .addSA(let association):
            guard association.reqid == owner else {
                return .failed(
                    errno: EINVAL, message: "SA reqid \(association.reqid) is not the owner's reqid \(owner)")
            }
        case .deleteSA(let identifier):
            if let existing = securityAssociationDatabase[identifier], existing.reqid != owner {
                return .failed(
                    errno: ESRCH,
                    message: "no SA \(identifier) with reqid \(owner); one of reqid \(existing.reqid) is left alone")
            }
        case .addPolicy(let policy), .updatePolicy(let policy):
            guard policy.template.reqid == owner else {
                return .failed(
                    errno: EINVAL, message: "policy reqid \(policy.template.reqid) is not the owner's reqid \(owner)")
            }
            if case .updatePolicy = operation, let existing = policyDatabase[policy.identifier],
                existing.templateReqid != owner
            {
                return .failed(
                    errno: EEXIST, message: "a policy of reqid \(existing.templateReqid) holds \(policy.identifier)")
            }
        case .deletePolicy(let identifier):
            if let existing = policyDatabase[identifier], existing.templateReqid != owner {
                return .failed(
                    errno: ENOENT,
                    message: "no policy \(identifier) with reqid \(owner); reqid \(existing.templateReqid) holds it"
                )
            }
        }
        return nil
    }

    /// The kernel's own semantics, without faults or ownership.
    mutating func applyToDatabases(_ operation: KernelOperation, now: UInt64) -> OperationOutcome {
        switch operation {
        case .addSA(let association):
            guard association.source.family == association.destination.family else {
                return .failed(errno: EINVAL, message: "source and destination families differ")
            }
            if let key = association.key.material, key.count != association.cipher.keyLength {
                return .failed(
                    errno: EINVAL, message: "\(association.cipher) needs a \(association.cipher.keyLength)-byte key")
            }
            guard securityAssociationDatabase[association.identifier] == nil else {
                return .failed(errno: EEXIST, message: nil)
            }
            securityAssociationDatabase[association.identifier] = SimulatedSecurityAssociation(
                association, insertionOrder: takeInsertionOrder(), addTime: now
            )
        case .deleteSA(let identifier):
            guard securityAssociationDatabase.removeValue(forKey: identifier) != nil else {
                return .failed(errno: ESRCH, message: nil)
            }
        case .addPolicy(let policy):
            guard policy.selector.source.family == policy.selector.destination.family else {
                return .failed(errno: EINVAL, message: "selector families differ")
            }
            guard policyDatabase[policy.identifier] == nil else {
                return .failed(errno: EEXIST, message: nil)
            }
            policyDatabase[policy.identifier] = SimulatedPolicy(policy, insertionOrder: takeInsertionOrder())
        case .updatePolicy(let policy):
            guard policy.selector.source.family == policy.selector.destination.family else {
                return .failed(errno: EINVAL, message: "selector families differ")
            }
            // A replacement of the same priority keeps its place among equals, as the kernel's
            // insert-after-last-not-greater does; a new priority goes last among its equals.
            let existing = policyDatabase[policy.identifier]
            let order =
                existing.flatMap { $0.priority == policy.priority ? $0.insertionOrder : nil }
                ?? takeInsertionOrder()
            policyDatabase[policy.identifier] = SimulatedPolicy(policy, insertionOrder: order)
        case .deletePolicy(let identifier):
            guard policyDatabase.removeValue(forKey: identifier) != nil else {
                return .failed(errno: ENOENT, message: nil)
            }
        }
        return .applied
    }
}
