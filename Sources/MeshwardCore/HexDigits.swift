/// Lowercase hexadecimal text written straight into the string's storage: the plan and the
/// simulated kernel format millions of SPIs and key fingerprints, where building each from
/// `String(_:radix:)` pieces was a measurable share of the time.
public enum HexDigits {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `bytes` as two lowercase hex digits each.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            var index = 0
            for byte in bytes {
                buffer[index] = digits[Int(byte >> 4)]
                buffer[index + 1] = digits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }

    /// `value` as `0x` and exactly `width` lowercase hex digits, zero-padded (wider values keep
    /// every digit).
    static func prefixed(_ value: UInt32, width: Int) -> String {
        let significant = max(width, (32 - value.leadingZeroBitCount + 3) / 4)
        return String(unsafeUninitializedCapacity: significant + 2) { buffer in
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "x")
            var remaining = value
            for index in stride(from: significant + 1, through: 2, by: -1) {
                buffer[index] = digits[Int(remaining & 0x0F)]
                remaining >>= 4
            }
            return significant + 2
        }
    }
}
