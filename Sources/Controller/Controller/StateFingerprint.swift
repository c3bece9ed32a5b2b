import COpenSSL
import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Store
import Synchronization

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
        // The records' positions in the dictionary are sorted, not the records (moving a million
        // records while sorting cost more than rendering them); each record is read at its
        // position as its line is written, without hashing its id again.
        let sorted = sortedByID(Array(records.indices)) { records.keys[$0] }
        // Each line is written piece by piece (no interpolated string per line): the text of
        // `channel \(id) step \(step) since \(seconds)` and of each generation's line.
        lines.appendInParallel(count: sorted.count, chunk: 4_096) { index, text in
            let record = records.values[sorted[index]]
            text.appendLiteral("\nchannel ")
            text.appendUTF8(record.id.from)
            text.appendLiteral("->")
            text.appendUTF8(record.id.to)
            text.appendLiteral("/")
            text.appendUTF8(record.id.family.description)
            text.appendLiteral(" step ")
            text.appendUTF8(record.step.rawValue)
            text.appendLiteral(" since ")
            text.appendUTF8(record.stepChangedAt.timeIntervalSince1970.description)
            for generation in record.generations {
                text.appendLiteral("\n  generation ")
                text.appendDecimal(generation.number)
                text.appendLiteral(" spi ")
                HexDigits.appendPrefixed(generation.spi.rawValue, to: &text)
                text.appendLiteral(" ")
                text.appendUTF8(generation.cipher.rawValue)
                text.appendLiteral(" ")
                generation.source.appendDescription(to: &text)
                text.appendLiteral(" -> ")
                generation.destination.appendDescription(to: &text)
                text.appendLiteral(" ")
                text.appendUTF8(generation.state.rawValue)
                text.appendLiteral(" created ")
                text.appendUTF8(generation.createdAt.timeIntervalSince1970.description)
                text.appendLiteral(" superseded ")
                text.appendUTF8((generation.supersededAt?.timeIntervalSince1970 ?? -1).description)
            }
        }
        return lines.finish()
    }

    /// `ids` in `ChannelID` order, sorted on each name's rank among the names rather than on
    /// the names: a million channels name only a few thousand nodes.
    static func sortedIDs(_ ids: some Collection<ChannelID>) -> [ChannelID] {
        sortedByID(Array(ids), id: { $0 })
    }

    /// `items` in the `ChannelID` order of `id`, as `sortedIDs` sorts.
    static func sortedByID<Item>(_ items: [Item], id: (Item) -> ChannelID) -> [Item] {
        var names: Set<String> = []
        var last: String?
        for item in items {
            let id = id(item)
            if id.from != last { names.insert(id.from) }
            names.insert(id.to)
            last = id.from
        }
        var rank: [String: Int] = [:]
        for (position, name) in names.sorted().enumerated() { rank[name] = position }
        // Each item's id as one integer in the same order (from's rank, to's rank, IPv4 before
        // IPv6), beside the item's position: integers sort several times faster than tuples of
        // them, and the position keeps items with one id in their given order.
        var keyed: [(key: Int, position: Int)] = []
        keyed.reserveCapacity(items.count)
        var lastFrom: (name: String, rank: Int)?
        for (position, item) in items.enumerated() {
            let id = id(item)
            let from: Int
            if let lastFrom, lastFrom.name == id.from {
                from = lastFrom.rank
            } else {
                from = rank[id.from] ?? 0
                lastFrom = (id.from, from)
            }
            let key = ((from * names.count) + (rank[id.to] ?? 0)) * 2 + (id.family == .ipv4 ? 0 : 1)
            keyed.append((key, position))
        }
        keyed.sort { $0.key != $1.key ? $0.key < $1.key : $0.position < $1.position }
        return keyed.map { items[$0.position] }
    }

    /// Over every node read: whether it answered, and its owned SAs (addresses, SPI, cipher,
    /// reqid) and policies (selector, direction, template), sorted.
    static func fleet(observations: [String: NodeObservation], unreachable: [String: String]) -> String {
        var lines = LineDigest("meshward-fleet/1")
        let nodes = Set(observations.keys).union(unreachable.keys).sorted()
        lines.appendInParallel(count: nodes.count, chunk: 1) { index, text in
            let node = nodes[index]
            guard let observation = observations[node] else {
                text.appendUTF8("\nnode \(node) unreachable")
                return
            }
            text.appendUTF8("\nnode \(node)")
            // Each object's line written piece by piece into one buffer, then the lines sorted
            // by their bytes: the text and order of `"  sa \(source) -> …"` and `"  \(policy)"`
            // sorted as strings (the lines are ASCII, whose string order is their byte order).
            var objects = SortedLines()
            for sa in observation.securityAssociations {
                objects.add { line in
                    line.appendLiteral("  sa ")
                    sa.source.appendDescription(to: &line)
                    line.appendLiteral(" -> ")
                    sa.destination.appendDescription(to: &line)
                    line.appendLiteral(" spi ")
                    HexDigits.appendPrefixed(sa.spi.rawValue, to: &line)
                    line.appendLiteral(" ")
                    line.appendUTF8(sa.cipher.rawValue)
                    line.appendLiteral(" reqid ")
                    HexDigits.appendPrefixed(sa.reqid.rawValue, to: &line)
                }
            }
            objects.appendSorted(to: &text)
            for policy in observation.policies {
                objects.add { line in
                    line.appendLiteral("  ")
                    appendDescription(of: policy, to: &line)
                }
            }
            objects.appendSorted(to: &text)
        }
        return lines.finish()
    }

    /// Appends `policy.description` (`policy src … dst … TRAFFIC dir … priority … tmpl esp
    /// transport reqid …[ spi …] level use|required`), written piece by piece.
    static func appendDescription(of policy: SecurityPolicy, to line: inout [UInt8]) {
        let selector = policy.selector
        line.appendLiteral("policy src ")
        selector.source.address.appendDescription(to: &line)
        line.appendLiteral("/")
        line.appendDecimal(selector.source.length)
        line.appendLiteral(" dst ")
        selector.destination.address.appendDescription(to: &line)
        line.appendLiteral("/")
        line.appendDecimal(selector.destination.length)
        line.appendLiteral(" ")
        line.appendUTF8(selector.traffic.description)
        line.appendLiteral(" dir ")
        line.appendUTF8(policy.direction.rawValue)
        line.appendLiteral(" priority ")
        line.appendDecimal(Int(policy.priority))
        line.appendLiteral(" tmpl esp transport reqid ")
        HexDigits.appendPrefixed(policy.template.reqid.rawValue, to: &line)
        if let spi = policy.template.spi {
            line.appendLiteral(" spi ")
            HexDigits.appendPrefixed(spi.rawValue, to: &line)
        }
        line.appendLiteral(policy.template.isOptional ? " level use" : " level required")
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

    /// Appends the lines of `count` items, in order: `render` appends item `index`'s lines to
    /// `text`, each preceded by a newline. Runs of `chunk` items are rendered on every core, a
    /// few runs at a time, and fed in order: the same digest as appending the lines one by one.
    mutating func appendInParallel(
        count: Int, chunk: Int, render: @Sendable (_ index: Int, _ text: inout [UInt8]) -> Void
    ) {
        let runs = (count + chunk - 1) / chunk
        let wave = max(1, ProcessInfo.processInfo.activeProcessorCount * 4)
        // One buffer per run of a wave, reused by the next wave: fresh megabytes for every run
        // cost as much in page faults as rendering into them.
        let texts = Mutex([[UInt8]](repeating: [], count: wave))
        var first = 0
        while first < runs {
            let last = min(runs, first + wave)
            let start = first
            DispatchQueue.concurrentPerform(iterations: last - first) { offset in
                let run = start + offset
                var text = texts.withLock { texts in
                    defer { texts[offset] = [] }
                    return texts[offset]
                }
                text.removeAll(keepingCapacity: true)
                text.reserveCapacity(64 * 1_024)
                for index in (run * chunk)..<min(count, (run + 1) * chunk) { render(index, &text) }
                texts.withLock { $0[offset] = text }
            }
            texts.withLock { texts in
                for text in texts[0..<(last - first)] { feed(bytes: text) }
            }
            first = last
        }
    }

    private func feed(bytes: [UInt8]) {
        bytes.withUnsafeBytes { bytes in _ = EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) }
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

/// Lines written into one buffer, then appended sorted by their bytes, each after a newline.
private struct SortedLines {
    private var bytes: [UInt8] = []
    private var lines: [Range<Int>] = []

    /// Adds the line `write` appends (without its newline).
    mutating func add(_ write: (inout [UInt8]) -> Void) {
        let start = bytes.count
        write(&bytes)
        lines.append(start..<bytes.count)
    }

    /// Appends every line to `text` in byte order (shorter first where one is the other's
    /// prefix), each after a newline, and starts over empty.
    mutating func appendSorted(to text: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress {
                lines.sort { left, right in
                    let order = memcmp(
                        base + left.lowerBound, base + right.lowerBound, Swift.min(left.count, right.count))
                    return order != 0 ? order < 0 : left.count < right.count
                }
            }
            for line in lines {
                text.append(UInt8(ascii: "\n"))
                text.append(contentsOf: buffer[line])
            }
        }
        bytes.removeAll(keepingCapacity: true)
        lines.removeAll(keepingCapacity: true)
    }
}

extension [UInt8] {
    /// Appends `text`'s UTF-8 (a native string's bytes, copied at once).
    fileprivate mutating func appendUTF8(_ text: String) {
        var text = text
        text.withUTF8 { append(contentsOf: $0) }
    }

    /// Appends a literal's UTF-8: no string is made, retained or released.
    fileprivate mutating func appendLiteral(_ text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Appends `value` in decimal, as `value.description` writes it.
    fileprivate mutating func appendDecimal(_ value: Int) {
        if value < 0 { append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // Room for 20 digits, written from the end.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var index = digits.count
            repeat {
                index -= 1
                digits[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            append(contentsOf: digits[index...])
        }
    }
}
