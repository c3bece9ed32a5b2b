import MeshwardCore
import Testing

/// How a certificate serial is printed, stored and compared: two hex digits per byte.
@Suite("certificate serials")
struct CertificateSerialTests {
    /// Bytes and the text they print as.
    struct Printed: Sendable, CustomTestStringConvertible {
        let bytes: [UInt8]
        let text: String
        var testDescription: String { text }
    }

    @Test(
        "every byte prints as two lowercase hex digits, a byte below 0x10 with its leading zero",
        arguments: [
            Printed(bytes: [0x0c, 0xff, 0x01], text: "0c:ff:01"),
            Printed(bytes: [0x00, 0x8a, 0x10], text: "00:8a:10"),
            Printed(bytes: [0x5a, 0x3c], text: "5a:3c"),
            Printed(bytes: [0x07], text: "07"),
        ])
    func prints(_ printed: Printed) {
        #expect(CertificateSerial(bytes: printed.bytes).description == printed.text)
        #expect(CertificateSerial(printed.text) == CertificateSerial(bytes: printed.bytes))
    }

    @Test(
        "a serial in the older form without each byte's leading zero reads as the same bytes and normalises to two digits",
        arguments: [("c:ff:1", "0c:ff:01"), ("0:8a:10", "00:8a:10"), ("C:FF:1", "0c:ff:01"), ("5a:3c", "5a:3c")])
    func readsTheOlderForm(older: String, current: String) {
        #expect(CertificateSerial(older)?.description == current)
        #expect(CertificateSerial.normalised(older) == current)
        #expect(CertificateSerial.normalised(current) == current)
    }

    @Test(
        "text that is not a serial is not read as one, and normalises to itself",
        arguments: ["", "0c::01", "0c:ff:", "abc:01", "0x0c", "zz", "0c ff"])
    func refusesOtherText(text: String) {
        #expect(CertificateSerial(text) == nil)
        #expect(CertificateSerial.normalised(text) == text)
    }
}
