import MeshwardCore
import Testing

@Suite("node endpoints")
struct NodeEndpointTests {
    @Test(
        "agent endpoints parse with the default port 7443, an explicit port, and IPv6 in brackets",
        arguments: [
            ("agent", NodeEndpoint.agent(host: nil, port: 7443)),
            ("agent:198.18.1.10", .agent(host: "198.18.1.10", port: 7443)),
            ("agent:198.18.1.10:9000", .agent(host: "198.18.1.10", port: 9000)),
            ("agent:web-1.example", .agent(host: "web-1.example", port: 7443)),
            ("agent:[2001:db8::10]:7444", .agent(host: "2001:db8::10", port: 7444)),
            ("agent:[2001:db8::10]", .agent(host: "2001:db8::10", port: 7443)),
            ("agent:2001:db8::10", .agent(host: "2001:db8::10", port: 7443)),
        ])
    func parses(text: String, expected: NodeEndpoint) {
        #expect(NodeEndpoint(text) == expected)
        #expect(NodeEndpoint(expected.description) == expected, "its spelling \(expected) parses back")
    }

    @Test(
        "malformed agent endpoints are refused",
        arguments: [
            "agent:", "agent:host:0", "agent:host:65536", "agent:host:port", "agent:[198.18.1.10]:7443",
            "agent:[2001:db8::10", "agent:[2001:db8::10]7443", "agent:a/b", "agent:-host",
        ])
    func refuses(text: String) {
        #expect(NodeEndpoint(text) == nil)
    }
}
