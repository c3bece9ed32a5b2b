import Telemetry
import Testing

@Suite("--metrics-address")
struct ListenAddressTests {
    @Test(
        "HOST:PORT and [IPV6]:PORT are read",
        arguments: [
            ("127.0.0.1:9464", "127.0.0.1", 9464), ("localhost:0", "localhost", 0), ("[::1]:9464", "::1", 9464),
            ("0.0.0.0:65535", "0.0.0.0", 65_535),
        ])
    func good(text: String, host: String, port: Int) throws {
        let address = try ListenAddress(parsing: text)
        #expect(address.host == host && address.port == port)
        #expect(address.description == text)
    }

    @Test(
        "a malformed address is refused with what is wrong",
        arguments: [
            ("9464", "it has no port"), (":9464", "it has no host"), ("host:", "the port must be a number"),
            ("host:65536", "the port must be a number"), ("host:x1", "the port must be a number"),
            ("::1:9464", "in brackets"), ("[::1]9464", "needs brackets and a port"),
        ])
    func bad(text: String, reason: String) {
        #expect {
            try ListenAddress(parsing: text)
        } throws: { error in
            "\(error)".contains("'\(text)' is not HOST:PORT") && "\(error)".contains(reason)
        }
    }
}
