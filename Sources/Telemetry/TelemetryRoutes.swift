import NIOHTTP1

/// What the telemetry server answers, by path: `/metrics` (the Prometheus text format),
/// `/healthz` (200 while the process serves), `/readyz` (200 when ready, 503 otherwise, with the
/// reason). Pure: the HTTP handler only writes what this returns.
public struct TelemetryRoutes: Sendable {
    /// One response.
    public struct Response: Sendable, Equatable {
        public let status: HTTPResponseStatus
        public let contentType: String
        public let body: String
    }

    private let metrics: @Sendable () -> String
    private let readiness: @Sendable () -> (ready: Bool, reason: String)

    /// - Parameters:
    ///   - metrics: the exposition text (a Prometheus registry's `emitToString`).
    ///   - readiness: whether the process is ready, and why.
    public init(
        metrics: @escaping @Sendable () -> String,
        readiness: @escaping @Sendable () -> (ready: Bool, reason: String)
    ) {
        self.metrics = metrics
        self.readiness = readiness
    }

    static let plainText = "text/plain; charset=utf-8"
    /// The Prometheus text exposition format.
    static let exposition = "text/plain; version=0.0.4; charset=utf-8"

    /// The answer to `method` on `uri` (its query, if any, is ignored).
    public func respond(method: HTTPMethod, uri: String) -> Response {
        let path =
            uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        guard method == .GET || method == .HEAD else {
            return Response(status: .methodNotAllowed, contentType: Self.plainText, body: "only GET is served\n")
        }
        switch path {
        case "/metrics":
            return Response(status: .ok, contentType: Self.exposition, body: metrics())
        case "/healthz":
            return Response(status: .ok, contentType: Self.plainText, body: "ok\n")
        case "/readyz":
            let (ready, reason) = readiness()
            return Response(
                status: ready ? .ok : .serviceUnavailable, contentType: Self.plainText,
                body: (ready ? "ready: " : "not ready: ") + reason + "\n")
        default:
            return Response(
                status: .notFound, contentType: Self.plainText, body: "not found; try /metrics, /healthz or /readyz\n")
        }
    }
}
