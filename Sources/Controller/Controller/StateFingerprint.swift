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
        var lines = ["meshward-store/1", "revision \(revision ?? "none")"]
        for record in records.values.sorted(by: { $0.id < $1.id }) {
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
        return sha256(lines.joined(separator: "\n"))
    }

    /// Over every node read: whether it answered, and its owned SAs (addresses, SPI, cipher,
    /// reqid) and policies (selector, direction, template), sorted.
    static func fleet(observations: [String: NodeObservation], unreachable: [String: String]) -> String {
        var lines = ["meshward-fleet/1"]
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
        return sha256(lines.joined(separator: "\n"))
    }

    static func sha256(_ text: String) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBufferPointer { input in
            EVP_Digest(input.baseAddress, input.count, &digest, &length, EVP_sha256(), nil)
        }
        return digest.map { byte in
            let hex = String(byte, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }.joined()
    }
}
