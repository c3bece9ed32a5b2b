/// Lowercase hexadecimal text written straight into the string's storage: the plan and the
/// simulated kernel format millions of SPIs and key fingerprints, where building each from
/// `String(_:radix:)` pieces was a measurable share of the time.
public enum HexDigits {
    /// The lowercase digit of `value` (0...15): arithmetic, not a table (a global table is
    /// checked for initialization at every read, millions of times in a plan).
    @inline(__always)
    private static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") - 10 + value
    }

    /// `bytes` as two lowercase hex digits each.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            var index = 0
            for byte in bytes {
                buffer[index] = digit(byte >> 4)
                buffer[index + 1] = digit(byte & 0x0F)
                index += 2
            }
            return index
        }
    }

    /// Appends `value` as `0x` and eight lowercase hex digits (what `prefixed(value, width: 8)`
    /// writes) to `bytes`.
    package static func appendPrefixed(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "0"))
        bytes.append(UInt8(ascii: "x"))
        for shift in stride(from: 28, through: 0, by: -4) {
            bytes.append(digit(UInt8(truncatingIfNeeded: value >> UInt32(shift)) & 0x0F))
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
                buffer[index] = digit(UInt8(truncatingIfNeeded: remaining & 0x0F))
                remaining >>= 4
            }
            return significant + 2
        }
    }
}
