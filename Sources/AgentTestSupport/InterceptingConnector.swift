import Kernel
import KernelSimulator
import MeshwardCore

/// A simulated fleet's kernels with a test's own step around each observation and batch: the
/// shape of the doubles that count a node's calls, hold them, or answer them late. Each step
/// gets the node's simulated kernel and decides what to do with the call.
public final class InterceptingConnector: KernelConnector {
    public typealias Observe = @Sendable (SimulatedKernel, ContinuousClock.Instant) async throws -> NodeObservation
    public typealias Apply =
        @Sendable (SimulatedKernel, [KernelOperation], ContinuousClock.Instant) async throws -> [OperationResult]

    public let fleet: SimulatedFleet
    let observe: Observe
    let apply: Apply

    /// - Parameters:
    ///   - observe: runs each observation (by default: the simulated kernel's own).
    ///   - apply: runs each batch (by default: the simulated kernel's own).
    public init(
        fleet: SimulatedFleet,
        observe: @escaping Observe = { kernel, deadline in try await kernel.observe(deadline: deadline) },
        apply: @escaping Apply = { kernel, operations, deadline in
            try await kernel.apply(operations, deadline: deadline)
        }
    ) {
        self.fleet = fleet
        self.observe = observe
        self.apply = apply
    }

    public var schemes: Set<NodeEndpoint.Scheme> { [.sim] }

    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        Intercepted(inner: fleet.kernel(for: node, reqid: reqid), observeStep: observe, applyStep: apply)
    }

    struct Intercepted: NodeKernel {
        let inner: SimulatedKernel
        let observeStep: Observe
        let applyStep: Apply
        var node: String { inner.node }
        var reqid: Reqid { inner.reqid }

        func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
            try await observeStep(inner, deadline)
        }

        func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult]
        {
            try await applyStep(inner, operations, deadline)
        }
    }
}
