/// A certificate's serial number as Meshward prints, stores and compares it: its big-endian
/// bytes as two lowercase hex digits each, separated by colons (`0c:ff:01`).
///
/// swift-certificates' `Certificate.SerialNumber` prints each byte without its leading zero
/// (`c:ff:1`). Meshward once stored and printed serials that way (the Stores' migration
/// `two-digit-certificate-serials` rewrote them), so `init(_:)` reads both forms and
/// `normalised(_:)` turns either into this one. Identity makes one from a certificate
/// (`Certificate.serial`); the Stores hold its `description`.
public struct CertificateSerial: Sendable, Hashable, CustomStringConvertible {
    /// The serial number's big-endian bytes, as the certificate encodes them.
    public let bytes: [UInt8]

    /// The serial number made of `bytes` (big-endian).
    public init(bytes: some Sequence<UInt8>) {
        self.bytes = Array(bytes)
    }

    /// Reads colon-separated hex bytes, each of one or two digits in either case (`0c:ff:01`, or
    /// the older `c:ff:1`); nil for anything else, an empty string included.
    public init?(_ text: some StringProtocol) {
        var bytes: [UInt8] = []
        for part in text.split(separator: ":", omittingEmptySubsequences: false) {
            guard (1...2).contains(part.count), part.allSatisfy(\.isHexDigit), let byte = UInt8(part, radix: 16)
            else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// Two lowercase hex digits per byte, separated by colons: `0c:ff:01`.
    public var description: String {
        bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        .joined(separator: ":")
    }

    /// `text` in the two-digit form when it is a serial in either form; anything else unchanged,
    /// so that it still compares equal only to itself.
    public static func normalised(_ text: String) -> String {
        CertificateSerial(text)?.description ?? text
    }
}
