import Logging
import MeshwardCore

/// Opens XFRM netlink sockets for `local` and `netns:NAME` endpoints.
public struct NetlinkConnector: KernelConnector {
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public var schemes: Set<NodeEndpoint.Scheme> { [.local, .netns] }

    public func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        try NetlinkKernel(node: node, endpoint: endpoint, reqid: reqid, logger: logger)
    }
}
