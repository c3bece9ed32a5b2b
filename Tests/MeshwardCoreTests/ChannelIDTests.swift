import MeshwardCore
import Testing

@Suite("channel ids")
struct ChannelIDTests {
    @Test(
        "a channel's spelling parses back to it",
        arguments: [
            ChannelID(from: "web-1", to: "app-1", family: .ipv4),
            ChannelID(from: "app-1", to: "web-1", family: .ipv6),
            ChannelID(from: "a", to: "b.example", family: .ipv4),
            ChannelID(from: "n--1", to: "0", family: .ipv6),
        ])
    func parses(id: ChannelID) {
        #expect(ChannelID(id.description) == id)
    }

    @Test(
        "malformed spellings are refused",
        arguments: [
            "", "web-1->app-1", "web-1->app-1/", "web-1->app-1/ipv5", "web-1->app-1/IPv4", "->app-1/ipv4",
            "web-1->/ipv4", "web-1-app-1/ipv4", "a->b->c/ipv4", "a/b->c/ipv4", "a>->b/ipv4", "web-1->app-1/ipv4 ",
        ])
    func refuses(text: String) {
        #expect(ChannelID(text) == nil)
    }
}
