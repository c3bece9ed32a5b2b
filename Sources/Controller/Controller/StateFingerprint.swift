import COpenSSL
import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Store

/// Fingerprints that tell whether the Store or the fleet moved on since a plan was made
/// (`plan --out`, `apply PLANFILE`). Each is SHA-256 over a canonical, sorted text of what it
/// covers; neither text ever holds key material (keys, key fingerprints) or SA counters, which
/// move with traffic alone.
enum StateFingerprint {
    /// Over every channel record (step, and each generation's number, SPI, cipher, addresses,
    /// state and timestamps) and the recorded revision.
    static func store(records: [ChannelID: ChannelRecord], revision: String?) -> String {
        var lines = LineDigest("meshward-store/1")
        lines.append("revision \(revision ?? "none")")
        for id in records.keys.sorted() {
            guard let record = records[id] else { continue }
            lines.append(
                "channel \(record.id) step \(record.step.rawValue) since \(record.stepChangedAt.timeIntervalSince1970)")
            for generation in record.generations {
                lines.append(
                    "  generation \(generation.number) spi \(generation.spi.hex) \(generation.cipher.rawValue) "
                        + "\(generation.source) -> \(generation.destination) \(generation.state.rawValue) "
                        + "created \(generation.createdAt.timeIntervalSince1970) "
                        + "superseded \(generation.supersededAt?.timeIntervalSince1970 ?? -1)")
            }
        }
        return lines.finish()
    }

    /// Over every node read: whether it answered, and its owned SAs (addresses, SPI, cipher,
    /// reqid) and policies (selector, direction, template), sorted.
    static func fleet(observations: [String: NodeObservation], unreachable: [String: String]) -> String {
        var lines = LineDigest("meshward-fleet/1")
        for node in Set(observations.keys).union(unreachable.keys).sorted() {
            guard let observation = observations[node] else {
                lines.append("node \(node) unreachable")
                continue
            }
            lines.append("node \(node)")
            lines.append(
                contentsOf: observation.securityAssociations.map {
                    "  sa \($0.source) -> \($0.destination) spi \($0.spi.hex) \($0.cipher.rawValue) reqid \($0.reqid)"
                }.sorted())
            lines.append(contentsOf: observation.policies.map { "  \($0)" }.sorted())
        }
        return lines.finish()
    }

    /// SHA-256 of `text` as one piece, in lowercase hex: what the line-by-line digests equal.
    static func sha256(_ text: String) -> String {
        LineDigest(text).finish()
    }
}

/// SHA-256 over lines joined by newlines, fed to the digest as they come: the same digest as
/// hashing the joined text, without ever holding it (at a million channels the text of a
/// fingerprint is hundreds of megabytes).
private struct LineDigest: ~Copyable {
    private let context: OpaquePointer

    init(_ first: String) {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        feed(first)
    }

    deinit { EVP_MD_CTX_free(context) }

    mutating func append(_ line: String) {
        feed("\n")
        feed(line)
    }

    mutating func append(contentsOf lines: [String]) {
        for line in lines { append(line) }
    }

    private func feed(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
    }

    /// The digest in lowercase hex.
    consuming func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        return HexDigits.string(digest)
    }
}
