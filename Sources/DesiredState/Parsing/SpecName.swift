/// The rule for node and flow names: DNS-label-like, so names are safe in files, logs and kernels.
enum SpecName {
    /// The rule in words, for error messages.
    static let rule = "use 1 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"

    /// True for `[a-z0-9]([-a-z0-9.]*[a-z0-9])?` of at most 63 characters.
    static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func alphanumeric(_ byte: UInt8) -> Bool { (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) }
        guard alphanumeric(bytes[0]), alphanumeric(bytes[bytes.count - 1]) else { return false }
        return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }
}
