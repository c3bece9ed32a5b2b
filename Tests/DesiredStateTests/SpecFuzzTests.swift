import Foundation
import MeshwardTestSupport
import Testing

@testable import DesiredState

/// A seeded mutation fuzzer for the spec loader.
///
/// Starts from the example specs and the hostile corpus, applies random byte, line and token
/// mutations, and loads each result from a file as `meshward` would. Every input must give either
/// a compiled intent without errors, or at least one error, every diagnostic located inside the
/// input. The slowest load is printed; the suite's time limit only stops a loader that hangs.
///
/// The run is fixed by its seed, printed at the start: replay a failure with
/// `MESHWARD_FUZZ_SEED=<seed> swift test --filter SpecFuzzTests`, and search longer with
/// `MESHWARD_FUZZ_ITERATIONS=100000`. The input being loaded is kept in the file named at the
/// start, so that after a crash or a hang it is the input that caused it.
@Suite("Spec fuzzing", .timeLimit(.minutes(5)))
struct SpecFuzzTests {
    static let defaultSeed: UInt64 = 0x4D57_2F5A_5EED
    static let defaultIterations = 2_000
    /// Seed files larger than this are left out, to keep the default budget at a few seconds.
    static let largestSeed = 16 << 10

    @Test("mutated specs load to an intent or to located errors (seeded; the seed is printed)")
    func mutatedSpecs() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["MESHWARD_FUZZ_SEED"].flatMap { UInt64($0) } ?? Self.defaultSeed
        let iterations = environment["MESHWARD_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? Self.defaultIterations
        let validSeeds = try Self.seedInputs(under: [SpecTesting.repositoryRoot.appendingPathComponent("specs")])
        let seeds = try validSeeds + Self.seedInputs(under: [URL(fileURLWithPath: HostileSpecTests.corpus)])
        #expect(validSeeds.count >= 3 && seeds.count > 100, "the seed corpus is missing")

        let directory = try SpecTesting.temporaryDirectory()
        let path = directory.appendingPathComponent("fuzz-input.yaml").path
        Self.announce(
            "spec fuzz: seed \(seed), \(iterations) inputs from \(seeds.count) seeds; "
                + "the input being loaded is \(path) (replay with MESHWARD_FUZZ_SEED=\(seed))")

        var generator = SeededRandom(seed: seed)
        var mutator = SpecMutator(seeds: seeds, validSeeds: validSeeds)
        let clock = ContinuousClock()
        var slowest: Duration = .zero
        var valid = 0
        var failures = 0
        for iteration in 0..<iterations {
            let input = mutator.mutate(using: &generator)
            try Data(input).write(to: URL(fileURLWithPath: path))
            var loaded: SpecLoadResult?
            let elapsed = clock.measure { loaded = SpecLoader().load(paths: [path]) }
            guard let result = loaded else { continue }
            slowest = max(slowest, elapsed)
            if result.intent != nil { valid += 1 }
            let problems = Self.problems(with: result, path: path, input: input)
            if !problems.isEmpty {
                failures += 1
                let kept = directory.appendingPathComponent("failure-\(iteration).yaml")
                try? Data(input).write(to: kept)
                Issue.record(
                    """
                    seed \(seed), input \(iteration) (kept in \(kept.path)): \(problems.joined(separator: "; "))
                    diagnostics: \(result.diagnostics.prefix(3).map(\.description))
                    """)
                if failures >= 10 { break }
            }
        }
        Self.announce("spec fuzz: \(valid) of \(iterations) inputs valid; slowest load \(slowest)")
        if failures == 0 { try? FileManager.default.removeItem(at: directory) }
    }

    /// What is wrong with `result` for `input`; empty when it is acceptable.
    static func problems(with result: SpecLoadResult, path: String, input: [UInt8]) -> [String] {
        var problems: [String] = []
        if result.intent == nil && result.errors.isEmpty { problems.append("no intent and no error") }
        if result.intent != nil && !result.errors.isEmpty { problems.append("an intent despite errors") }
        let lineCount = input.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
        for diagnostic in result.diagnostics {
            if diagnostic.file != path { problems.append("diagnostic outside the input: \(diagnostic)") }
            if diagnostic.line < 1 || diagnostic.column < 1 || diagnostic.line > lineCount + 1 {
                problems.append("diagnostic not located in the input (\(lineCount) lines): \(diagnostic)")
            }
        }
        return problems
    }

    /// The spec files under `roots`, every one no larger than `largestSeed`.
    static func seedInputs(under roots: [URL]) throws -> [[UInt8]] {
        var files: [URL] = []
        for root in roots {
            let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
            while let url = enumerator?.nextObject() as? URL {
                guard SpecLoader.specExtensions.contains(url.pathExtension) else { continue }
                files.append(url)
            }
        }
        return try files.sorted { $0.path < $1.path }.compactMap { url in
            let data = try Data(contentsOf: url)
            return data.count <= largestSeed ? [UInt8](data) : nil
        }
    }

    /// Writes a line to standard error at once, so that it is there even if the run crashes.
    static func announce(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// Makes fuzz inputs from seed files: byte, line and token mutations, and splices of two seeds.
struct SpecMutator {
    let seeds: [[UInt8]]
    /// The seeds that load to an intent: the example specs.
    let validSeeds: [[UInt8]]
    /// Inputs are cut back to this size, so that repeated growth cannot slow the run.
    static let largestInput = 64 << 10

    /// Fragments that mean something to YAML, to the spec format, or to a text decoder.
    static let tokens: [String] = [
        "[", "]", "{", "}", ",", ": ", ":", "- ", "? ", "*a", "&a ", "*a : x", "&a [*a, *a]", "!!str ", "!!int ",
        "!<tag:x> ", "<<: ", "|", ">-", "#", "\"", "'", "\\", "\t", "\0", "\u{FEFF}", "\u{7}", "\r", "\r\n",
        "\n---\n", "\n...\n", "%YAML 1.1\n", "%TAG ! tag:x\n", "~", "null", "yes", "0x", "0o17", "-1", "0",
        "99999999999999999999", "1e308", ".nan", "version: 2\n", "version: 1\n", "cluster: x\n", "nodes:\n",
        "flows:\n", "defaults:\n", "reqid: ", "name: ", "addresses: ", "labels: ", "from: ", "to: ", "ports: ",
        "cipher: ", "rekey: ", "every: ", "packets: ", "drain: ", "enforcement: ", "endpoint: ", "netns:",
        "198.18.0.1", "255.255.255.255", "224.0.0.1", "0.0.0.0", "127.0.0.1", "\"::\"", "\"::1\"", "\"ff02::1\"",
        "\"fe80::1%eth0\"", "\"::ffff:198.18.0.1\"", "198.18.0.0/24", "2001:db8::1", "tcp/", "tcp/0", "udp/65536",
        "icmp/1", "tcp/80-90", "0s", "24h", "1h30m", "30m1h", "3651d", "1.5h", "aes-gcm-128", "chacha20-poly1305",
        "des", "é", "\u{1F600}", "{}", "[]", "{ name: a }",
    ]

    /// Invalid or unusual UTF-8 byte sequences.
    static let byteSequences: [[UInt8]] = [
        [0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xEF, 0xBB, 0xBF], [0x00], [0x85],
        [0xF4, 0x90, 0x80, 0x80],
    ]

    init(seeds: [[UInt8]], validSeeds: [[UInt8]]) {
        self.seeds = seeds
        self.validSeeds = validSeeds
    }

    /// One input: a random seed with one to four mutations.
    mutating func mutate(using generator: inout SeededRandom) -> [UInt8] {
        // Half the inputs start from a valid spec, so that mutations reach the compiler too.
        let pool = Bool.random(using: &generator) && !validSeeds.isEmpty ? validSeeds : seeds
        var bytes = pool.randomElement(using: &generator) ?? []
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            bytes = mutation(of: bytes, using: &generator)
        }
        return bytes.count > Self.largestInput ? Array(bytes.prefix(Self.largestInput)) : bytes
    }

    private func mutation(of input: [UInt8], using generator: inout SeededRandom) -> [UInt8] {
        var bytes = input
        func position(inclusive: Bool = true) -> Int {
            let upper = inclusive ? bytes.count : max(0, bytes.count - 1)
            return Int.random(in: 0...upper, using: &generator)
        }
        switch Int.random(in: 0..<12, using: &generator) {
        case 0:  // flip a bit
            guard !bytes.isEmpty else { break }
            bytes[position(inclusive: false)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
        case 1:  // a random byte in, or one out
            if Bool.random(using: &generator) || bytes.isEmpty {
                bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position())
            } else {
                bytes.remove(at: position(inclusive: false))
            }
        case 2:  // delete a range
            guard !bytes.isEmpty else { break }
            let start = position(inclusive: false)
            let end = min(bytes.count, start + Int.random(in: 1...64, using: &generator))
            bytes.removeSubrange(start..<end)
        case 3, 4, 5:  // insert a token
            let token = Self.tokens.randomElement(using: &generator) ?? ""
            bytes.insert(contentsOf: Array(token.utf8), at: position())
        case 6:  // replace a token-sized run with a token
            guard !bytes.isEmpty else { break }
            let start = position(inclusive: false)
            let end = min(bytes.count, start + Int.random(in: 1...12, using: &generator))
            bytes.replaceSubrange(start..<end, with: Array((Self.tokens.randomElement(using: &generator) ?? "").utf8))
        case 7:  // odd bytes
            bytes.insert(contentsOf: Self.byteSequences.randomElement(using: &generator) ?? [], at: position())
        case 8:  // duplicate, delete or swap lines
            var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            guard !lines.isEmpty else { break }
            let first = Int.random(in: 0..<lines.count, using: &generator)
            let second = Int.random(in: 0..<lines.count, using: &generator)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: lines.insert(lines[first], at: second)
            case 1: lines.remove(at: first)
            default: lines.swapAt(first, second)
            }
            bytes = Array(lines.joined(separator: [0x0A]))
        case 9:  // change a line's indentation
            var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
            guard !lines.isEmpty else { break }
            let line = Int.random(in: 0..<lines.count, using: &generator)
            if Bool.random(using: &generator) {
                let indent = Bool.random(using: &generator) ? 0x09 : 0x20
                lines[line].insert(
                    contentsOf: repeatElement(UInt8(indent), count: Int.random(in: 1...4, using: &generator)), at: 0)
            } else {
                lines[line].removeFirst(min(lines[line].count, Int.random(in: 1...4, using: &generator)))
            }
            bytes = Array(lines.joined(separator: [0x0A]))
        case 10:  // repeat a chunk
            guard !bytes.isEmpty else { break }
            let start = position(inclusive: false)
            let chunk = Array(bytes[start..<min(bytes.count, start + Int.random(in: 1...32, using: &generator))])
            let copies = Int.random(in: 2...80, using: &generator)
            bytes.insert(contentsOf: Array(repeatElement(chunk, count: copies).joined()), at: start)
        default:  // splice in part of another seed
            let other = seeds.randomElement(using: &generator) ?? []
            guard !other.isEmpty else { break }
            let start = Int.random(in: 0..<other.count, using: &generator)
            let end = min(other.count, start + Int.random(in: 1...256, using: &generator))
            bytes.insert(contentsOf: other[start..<end], at: position())
        }
        return bytes
    }
}
