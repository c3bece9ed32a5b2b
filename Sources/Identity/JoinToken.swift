import Crypto
import Foundation
import MeshwardCore
import SwiftASN1
import X509

/// A one-time join token, as `meshward agent token` prints it and an agent reads it from its
/// token file: `mwjoin1.<id>.<secret>.<ca>`.
///
/// - `id`: 8 random bytes as 16 lower-case hex digits; public, it names the token in the Store
///   and in every message.
/// - `secret`: 32 random bytes, base64url without padding (43 characters). Never stored, never
///   logged: the Store keeps only `verifier`, SHA-256 of the secret bytes.
/// - `ca`: SHA-256 of the cluster CA certificate's DER, 64 lower-case hex digits: the agent
///   accepts only a controller whose chain ends at that certificate.
///
/// `description` never shows the secret.
public struct JoinToken: Sendable, CustomStringConvertible {
    /// The format's prefix and version.
    public static let prefix = "mwjoin1"

    public let id: String
    public let secret: KeyMaterial
    public let caFingerprint: [UInt8]

    /// A new token with a random id and secret, pinning `caCertificate`.
    public static func generate(pinning caCertificate: Certificate) throws -> JoinToken {
        JoinToken(
            id: hex(try SecureRandom.bytes(count: 8)), secret: try KeyMaterial.random(count: 32),
            caFingerprint: try fingerprint(of: caCertificate))
    }

    init(id: String, secret: KeyMaterial, caFingerprint: [UInt8]) {
        self.id = id
        self.secret = secret
        self.caFingerprint = caFingerprint
    }

    /// Reads a token as printed; surrounding white space (a trailing newline) is ignored. The
    /// error says which part is wrong, never what the secret was.
    public init(parsing text: String) throws {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(
            separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.prefix else {
            throw JoinTokenFormatError(
                reason: "it is not of the form \(Self.prefix).<id>.<secret>.<ca fingerprint>")
        }
        guard parts[1].count == 16, let id = Self.unhex(parts[1]) else {
            throw JoinTokenFormatError(reason: "its id is not 16 lower-case hex digits")
        }
        guard parts[2].count == 43, let secret = Self.unbase64url(parts[2]), secret.count == 32 else {
            throw JoinTokenFormatError(reason: "its secret is not 32 bytes of base64url (43 characters)")
        }
        guard parts[3].count == 64, let fingerprint = Self.unhex(parts[3]) else {
            throw JoinTokenFormatError(reason: "its CA fingerprint is not 64 lower-case hex digits (SHA-256)")
        }
        self.init(id: Self.hex(id), secret: KeyMaterial(bytes: secret), caFingerprint: fingerprint)
    }

    /// The token as printed: the one place its secret appears.
    public var encoded: String {
        "\(Self.prefix).\(id).\(Self.base64url(secret.bytes)).\(Self.hex(caFingerprint))"
    }

    /// SHA-256 of the secret bytes: what the Store keeps.
    public var verifier: [UInt8] { Self.verifier(ofSecret: secret) }

    /// The pinned CA fingerprint as hex.
    public var caFingerprintHex: String { Self.hex(caFingerprint) }

    public var description: String { "join token \(id) (secret redacted)" }

    /// SHA-256 of a secret's bytes.
    public static func verifier(ofSecret secret: KeyMaterial) -> [UInt8] {
        Array(SHA256.hash(data: secret.bytes))
    }

    /// SHA-256 of a certificate's DER encoding.
    public static func fingerprint(of certificate: Certificate) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return Array(SHA256.hash(data: serializer.serializedBytes))
    }

    /// Lower-case hex.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { byte in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined()
    }

    static func unhex(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            let pair = text[index..<next]
            guard pair.allSatisfy({ $0.isHexDigit && !$0.isUppercase }), let byte = UInt8(pair, radix: 16) else {
                return nil
            }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func unbase64url(_ text: Substring) -> [UInt8]? {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            return nil
        }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map { [UInt8]($0) }
    }
}

/// A join token that does not read as one. The reason names the part, never the secret.
public struct JoinTokenFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String

    public var description: String {
        "this is not a Meshward join token: \(reason); use the line 'meshward agent token' printed, unchanged"
    }
}
