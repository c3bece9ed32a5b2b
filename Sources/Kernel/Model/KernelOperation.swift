import MeshwardCore

/// One change to a node's security databases. A batch is an ordered list of these; the kernel
/// processes them in order and not as a transaction.
public enum KernelOperation: Sendable, Hashable, CustomStringConvertible {
    /// `XFRM_MSG_NEWSA`: fails with EEXIST when (destination, SPI) exists.
    case addSA(SecurityAssociation)
    /// `XFRM_MSG_DELSA`: fails with ESRCH when missing.
    case deleteSA(SAIdentifier)
    /// `XFRM_MSG_NEWPOLICY`: exclusive; fails with EEXIST when the selector and direction exist.
    case addPolicy(SecurityPolicy)
    /// `XFRM_MSG_UPDPOLICY`: inserts or atomically replaces.
    case updatePolicy(SecurityPolicy)
    /// `XFRM_MSG_DELPOLICY`: fails with ENOENT when missing.
    case deletePolicy(PolicyIdentifier)

    /// A short name for logs and the journal: `add-sa`, `delete-sa`, `add-policy`, `update-policy`, `delete-policy`.
    public var kind: String {
        switch self {
        case .addSA: "add-sa"
        case .deleteSA: "delete-sa"
        case .addPolicy: "add-policy"
        case .updatePolicy: "update-policy"
        case .deletePolicy: "delete-policy"
        }
    }

    /// Whether the operation acts on the security policy database (rather than on an SA).
    public var isPolicyOperation: Bool {
        switch self {
        case .addSA, .deleteSA: false
        case .addPolicy, .updatePolicy, .deletePolicy: true
        }
    }

    /// What the operation acts on, keys redacted.
    public var target: String { target(spiText: nil) }

    /// `target` with the SPI the operation names written as `spiText` instead of its hex
    /// form (a plan shows a generation not yet issued as `new-N`); nil writes the hex form.
    public func target(spiText: String?) -> String {
        switch self {
        case .addSA(let sa): "\(sa.source) -> \(sa.destination) spi \(spiText ?? sa.spi.hex) \(sa.cipher)"
        case .deleteSA(let id): "\(id.destination) spi \(spiText ?? id.spi.hex)"
        case .addPolicy(let policy), .updatePolicy(let policy):
            "\(policy.selector) dir \(policy.direction) "
                + (policy.template.spi.map { "spi \(spiText ?? $0.hex) " } ?? "")
                + (policy.template.isOptional ? "optional" : "required")
        case .deletePolicy(let id): "\(id.selector) dir \(id.direction)"
        }
    }

    public var description: String { "\(kind) \(target)" }
}

/// The outcome of one operation of a batch.
public enum OperationOutcome: Sendable, Hashable, CustomStringConvertible {
    /// The kernel acknowledged the operation.
    case applied
    /// The kernel refused it: the errno and the kernel's extended-ack text, when it gave one.
    case failed(errno: Int32, message: String?)
    /// The operation was not attempted because the node became unreachable or an earlier
    /// operation of the batch stopped it. It did not take effect.
    case notAttempted(reason: String)
    /// The operation was sent but its answer was lost (a timeout, a connection that broke
    /// after sending): it may or may not have taken effect. Never resent blindly: the next
    /// observation decides.
    case indeterminate(reason: String)

    public var isApplied: Bool { self == .applied }

    public var description: String {
        switch self {
        case .applied: "applied"
        case .failed(let errno, let message):
            "failed: \(ErrnoName.name(errno))" + (message.map { " (\($0))" } ?? "")
        case .notAttempted(let reason): "not attempted: \(reason)"
        case .indeterminate(let reason): "indeterminate: \(reason)"
        }
    }
}

/// The result of one operation of a batch, in the order the batch gave them.
public struct OperationResult: Sendable, Hashable {
    public let operation: KernelOperation
    public let outcome: OperationOutcome

    public init(operation: KernelOperation, outcome: OperationOutcome) {
        self.operation = operation
        self.outcome = outcome
    }
}

/// Symbolic errno names for messages (`EEXIST (17)`).
public enum ErrnoName {
    public static func name(_ code: Int32) -> String {
        let names: [Int32: String] = [
            1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 11: "EAGAIN", 12: "ENOMEM",
            13: "EACCES", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL", 28: "ENOSPC",
            71: "EPROTO", 90: "EMSGSIZE", 92: "ENOPROTOOPT", 93: "EPROTONOSUPPORT", 95: "EOPNOTSUPP",
            97: "EAFNOSUPPORT", 105: "ENOBUFS", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
        ]
        return "\(names[code] ?? "errno") (\(code))"
    }
}
