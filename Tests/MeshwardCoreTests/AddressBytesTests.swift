import Testing

@testable import MeshwardCore

/// An address's network-order bytes, handed over on the stack (`withNetworkOrderBytes`), are
/// the bytes the address was made from, for both families.
@Suite("Network-order bytes of an address")
struct AddressBytesTests {
    @Test(
        "the bytes handed over are the address's own, and making an address of them gives it back",
        arguments: ["198.18.0.1", "0.0.0.0", "255.1.128.7", "2001:db8::1", "2001:db8:ffff:1:2:3:4:5", "::"])
    func networkOrderBytesRoundTrip(text: String) throws {
        let address = try #require(IPAddress(text))
        let handed = address.withNetworkOrderBytes { Array($0) }
        #expect(handed.count == address.family.addressLength)
        #expect(IPAddress(bytes: handed) == address)
        #expect(address.bytes == handed)
    }

    @Test("198.18.0.1 is handed over as c6 12 00 01")
    func ipv4BytesInOrder() throws {
        let address = try #require(IPAddress("198.18.0.1"))
        #expect(address.withNetworkOrderBytes { Array($0) } == [0xc6, 0x12, 0x00, 0x01])
    }

    @Test("2001:db8::1 is handed over as its sixteen bytes in order")
    func ipv6BytesInOrder() throws {
        let address = try #require(IPAddress("2001:db8::1"))
        #expect(
            address.withNetworkOrderBytes { Array($0) }
                == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01])
    }
}
