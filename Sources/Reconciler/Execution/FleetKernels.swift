import Kernel

/// Reaches the kernels of a fleet's nodes.
public protocol FleetKernels: Sendable {
    /// Every node the controller has a way to reach.
    var knownNodes: Set<String> { get }

    /// The kernel of `node`, connected on first use; throws when the node cannot be reached
    /// (no endpoint, namespace missing, socket refused, a remote connect that failed).
    func kernel(for node: String) async throws -> any NodeKernel

    /// Makes what was applied durable where the backend needs it (the simulated fleet's file);
    /// a no-op for real kernels.
    func persist() throws

    /// Closes every kernel connected so far (`NodeKernel.close()`), in parallel.
    func close() async
}

extension FleetKernels {
    public func close() async {}
}
