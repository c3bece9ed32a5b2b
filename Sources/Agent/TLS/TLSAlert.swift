/// The names of the TLS alerts a refused handshake is answered with (RFC 8446 §6).
enum TLSAlert {
    /// `handshake_failure (40)`, or the code alone for an alert not named here.
    static func name(_ description: UInt8) -> String {
        let names: [UInt8: String] = [
            10: "unexpected_message", 40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
            44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
            48: "unknown_ca", 50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
            71: "insufficient_security", 80: "internal_error", 109: "missing_extension",
            110: "unsupported_extension", 116: "certificate_required", 120: "no_application_protocol",
        ]
        return names[description].map { "\($0) (\(description))" } ?? "\(description)"
    }
}
