import Kernel
import MeshwardCore

extension SimulatedFleetState {
    /// Applies one operation to `node`'s kernel with the kernel's semantics: NEWSA fails EEXIST on
    /// an existing (destination, SPI) whatever its reqid, DELSA ESRCH when missing, NEWPOLICY
    /// EEXIST on an existing selector and direction, UPDPOLICY inserts or replaces, DELPOLICY
    /// ENOENT when missing. Pending faults apply first (an injected failure has no effect).
    ///
    /// This is the raw kernel: it touches foreign objects like any other. An unknown or
    /// unreachable node gives `.notAttempted`.
    public mutating func apply(_ operation: KernelOperation, on node: String) -> OperationOutcome {
        let now = currentTime
        return nodes[node]?.receive(operation, owner: nil, now: now)
            ?? .notAttempted(reason: "the simulated fleet has no node named \(node)")
    }

    /// Applies one operation as the owner of `reqid` would through its `NodeKernel`: as `apply(_:on:)`,
    /// but an operation that would write an object of another reqid, or change or delete a
    /// foreign object, fails (EINVAL for a write of another reqid; ESRCH, EEXIST or ENOENT for
    /// a foreign object in the way) and leaves it untouched.
    public mutating func apply(_ operation: KernelOperation, on node: String, reqid: Reqid) -> OperationOutcome {
        let now = currentTime
        return nodes[node]?.receive(operation, owner: reqid, now: now)
            ?? .notAttempted(reason: "the simulated fleet has no node named \(node)")
    }
}
