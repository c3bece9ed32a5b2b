/// What went wrong setting up metrics and health endpoints, in words an operator can act on.
public enum TelemetryError: Error, Sendable, CustomStringConvertible {
    /// `--metrics-address` is not `HOST:PORT`.
    case badAddress(String, reason: String)
    /// The server could not listen there (port in use, address not on this host, no permission).
    case cannotListen(ListenAddress, reason: String)

    public var description: String {
        switch self {
        case .badAddress(let text, let reason):
            "'\(text)' is not HOST:PORT (\(reason)); for example 127.0.0.1:9464"
        case .cannotListen(let address, let reason):
            "cannot serve metrics on \(address): \(reason). Choose another --metrics-address, or stop what "
                + "listens there"
        }
    }
}
