import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz` (`TelemetryRoutes`), on
/// swift-nio. `bind` listens at once, so a bad address or a port in use fails before the
/// controller starts; `run` (a `Service`) serves until a graceful shutdown, then closes.
public final class TelemetryServer: Service, Sendable {
    /// Where it listens, with the port the kernel chose when 0 was asked for.
    public let address: ListenAddress
    private let channel: any Channel

    private init(address: ListenAddress, channel: any Channel) {
        self.address = address
        self.channel = channel
    }

    /// Listens on `address`; throws `TelemetryError.cannotListen` with the system's reason.
    public static func bind(
        _ address: ListenAddress, routes: TelemetryRoutes,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> TelemetryServer {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(TelemetryHTTPHandler(routes: routes))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch let error as IOError {
            throw TelemetryError.cannotListen(address, reason: Self.reason(error.errnoCode))
        } catch {
            throw TelemetryError.cannotListen(address, reason: "\(error)")
        }
        let port = channel.localAddress?.port ?? address.port
        return TelemetryServer(address: ListenAddress(host: address.host, port: port), channel: channel)
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try? await channel.close()
    }

    /// Stops listening (for callers that do not run it under a `ServiceGroup`).
    public func close() async {
        try? await channel.close()
    }

    private static func reason(_ code: Int32) -> String {
        switch code {
        case EADDRINUSE: "the port is already in use"
        case EADDRNOTAVAIL: "the address is not one of this host's"
        case EACCES: "permission denied (ports below 1024 need privileges)"
        default: "\(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
