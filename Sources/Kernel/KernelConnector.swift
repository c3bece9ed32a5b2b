import MeshwardCore

/// Opens the kernel of a node whose endpoint has one of `schemes`. Connecting is asynchronous
/// and may fail: a remote kernel takes time to reach, and a namespace may not exist.
public protocol KernelConnector: Sendable {
    /// The endpoint schemes this connector serves.
    var schemes: Set<NodeEndpoint.Scheme> { get }
    /// The kernel of `node` at `endpoint`; throws `KernelError.unreachable` when it cannot be
    /// reached, with the reason.
    func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel
    /// Whether the kernels it returns outlive their use (a pool of connections kept by the
    /// process): their user must not close them.
    var keepsKernels: Bool { get }
}

extension KernelConnector {
    /// Kernels are the user's to close, unless a connector says otherwise.
    public var keepsKernels: Bool { false }
}
