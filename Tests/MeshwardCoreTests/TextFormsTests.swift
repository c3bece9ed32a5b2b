import Testing

@testable import MeshwardCore

/// The text forms written straight into string storage (`HexDigits`, IPv4's dotted decimal)
/// say exactly what the library's formatting said.
@Suite("Text forms of SPIs, key fingerprints and addresses")
struct TextFormsTests {
    @Test("an SPI is 0x and eight lowercase hex digits", arguments: [0, 0x100, 0xdead_beef, 0xffff_ffff] as [UInt32])
    func spiHex(value: UInt32) {
        let digits = String(value, radix: 16)
        #expect(SPI(value).hex == "0x" + String(repeating: "0", count: 8 - digits.count) + digits)
    }

    @Test("a key fingerprint is the first 8 bytes of SHA-256 as 16 lowercase hex digits")
    func keyFingerprint() {
        // SHA-256 of 32 zero bytes: 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925.
        #expect(KeyMaterial(bytes: Array(repeating: 0, count: 32)).fingerprint == "66687aadf862bd77")
    }

    @Test(
        "an IPv4 address is dotted decimal as inet_ntop writes it",
        arguments: ["0.0.0.0", "198.18.0.1", "10.20.100.255", "255.255.255.255", "1.2.3.4", "99.100.9.10"])
    func ipv4Description(text: String) throws {
        #expect(try #require(IPAddress(text)).description == text)
    }

    @Test(
        "an SPI appended to bytes is the text of SPI.hex",
        arguments: [0, 0x100, 0xab_cdef, 0xdead_beef, 0xffff_ffff] as [UInt32]
    )
    func spiAppendedAsHex(value: UInt32) {
        var bytes: [UInt8] = Array("x".utf8)
        HexDigits.appendPrefixed(value, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x" + SPI(value).hex)
    }

    @Test(
        "an address appended to bytes is the text of its description, both families",
        arguments: [
            "0.0.0.0", "198.18.0.1", "10.20.100.255", "255.255.255.255", "2001:db8::1", "::", "2001:db8:0:ff::a:2",
        ])
    func addressAppendedAsDescription(text: String) throws {
        let address = try #require(IPAddress(text))
        var bytes: [UInt8] = Array("x".utf8)
        address.appendDescription(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x" + address.description)
        #expect(address.description == text)
    }
}
