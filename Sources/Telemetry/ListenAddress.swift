/// Where a server listens: `HOST:PORT`, `[IPV6]:PORT`. Port 0 asks the kernel for a free port.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// A name or an address; an IPv6 address without its brackets.
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Reads `HOST:PORT` or `[IPV6]:PORT`; throws `TelemetryError.badAddress` saying what is wrong.
    public init(parsing text: String) throws {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw TelemetryError.badAddress(text, reason: "an IPv6 address needs brackets and a port: [::1]:9464")
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw TelemetryError.badAddress(text, reason: "it has no port")
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            if host.contains(":") {
                throw TelemetryError.badAddress(text, reason: "write an IPv6 address in brackets: [::1]:9464")
            }
        }
        guard !host.isEmpty else { throw TelemetryError.badAddress(text, reason: "it has no host") }
        guard let number = Int(port), port.allSatisfy(\.isASCII), (0...65_535).contains(number) else {
            throw TelemetryError.badAddress(text, reason: "the port must be a number from 0 to 65535")
        }
        self.init(host: String(host), port: number)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
