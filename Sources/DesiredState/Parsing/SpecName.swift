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

extension SpecName {
    /// The first scalar of `text` that a terminal would not show as itself: a control character
    /// (C0, C1, DEL), a format character (bidirectional overrides and isolates such as U+202E,
    /// zero-width characters), or a line or paragraph separator. Such a scalar can make a name
    /// print as another one, so names and labels may not hold any.
    static func hiddenCharacter(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned: true
            default: false
            }
        }
    }

    /// `U+202E`, for messages.
    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// `text` with every hidden scalar written as `\u{202E}`, for quoting it in a message.
    static func escaped(_ text: String) -> String {
        guard hiddenCharacter(in: text) != nil else { return text }
        var result = ""
        for scalar in text.unicodeScalars {
            if hiddenCharacter(in: String(scalar)) != nil {
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// The message for `what` holding `scalar`.
    static func hiddenCharacterMessage(_ what: String, _ scalar: Unicode.Scalar) -> String {
        "\(what) contains \(codePoint(scalar)), an invisible control or bidirectional-formatting character "
            + "that can make it display as something else; names and labels are identifiers: remove it"
    }
}
