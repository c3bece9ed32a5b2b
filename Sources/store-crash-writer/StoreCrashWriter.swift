import Foundation
import Logging
import MeshwardCore
import Store

/// A child process for the Store's tests: it writes to a state directory and reports each
/// commit on standard output, so that a test can kill it at any instant and check what survived.
///
///     store-crash-writer write DIR
///         Issues generations forever, alone and in batches, and activates them. After each call
///         returns it prints `committed FROM TO NUMBER FINGERPRINT` per generation, then
///         `activated FROM TO NUMBER` per activation. Runs until killed.
///     store-crash-writer lease DIR HOLDER HOLD_MS
///         Acquires the lease as HOLDER; if refused prints `refused: MESSAGE` and exits 3.
///         Otherwise issues one generation, prints `wrote`, holds the lease HOLD_MS, releases it.
@main
struct StoreCrashWriter {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3 else { usage() }
        let logger = Logger(label: "store-crash-writer") { _ in SwiftLogNoOpLogHandler() }
        let store = try StateStore.open(directory: arguments[2], logger: logger)
        switch arguments[1] {
        case "write":
            try write(store)
        case "lease" where arguments.count == 5:
            try lease(store, holder: arguments[3], holdMilliseconds: Int(arguments[4]) ?? 1000)
        default:
            usage()
        }
    }

    static func write(_ store: StateStore) throws {
        let source = address("198.18.0.1")
        var round = 0
        while true {
            round += 1
            let count = round % 3 == 0 ? 25 : 1
            let requests = (0..<count).map { index in
                let node = (round * 31 + index) % 40
                let channel = ChannelID(from: "node-\(node)", to: "node-\(node + 1)", family: .ipv4)
                let destination = address("198.18.1.\(node + 1)")
                return GenerationRequest(channel: channel, cipher: .aesGCM256, source: source, destination: destination)
            }
            let issued = try store.issueGenerations(requests, now: Date())
            for generation in issued {
                emit(
                    "committed \(generation.channel.from) \(generation.channel.to) \(generation.number) "
                        + generation.key.fingerprint)
            }
            // Activate the batch in one transaction, as a reconciler pass would.
            let channels = try store.loadChannels()
            var records: [ChannelRecord] = []
            for generation in issued {
                guard var record = channels[generation.channel],
                    let index = record.generations.firstIndex(where: { $0.number == generation.number }),
                    record.generations[index].state == .pending
                else { continue }
                record.generations[index].state = .active
                record.generations[index].activatedAt = Date()
                record.step = .established
                record.stepChangedAt = Date()
                records.append(record)
            }
            try store.update(records)
            for record in records {
                for generation in record.generations where generation.state == .active {
                    emit("activated \(record.id.from) \(record.id.to) \(generation.number)")
                }
            }
        }
    }

    static func lease(_ store: StateStore, holder: String, holdMilliseconds: Int) throws {
        do {
            try store.acquireLease(holder: holder, ttl: .seconds(60), now: Date())
        } catch let error as StoreError {
            emit("refused: \(error)")
            exit(3)
        }
        let channel = ChannelID(from: holder, to: "peer", family: .ipv4)
        _ = try store.issueGeneration(
            for: channel, cipher: .aesGCM128, source: address("198.18.0.1"), destination: address("198.18.0.2"),
            avoiding: [], now: Date())
        emit("wrote")
        Thread.sleep(forTimeInterval: Double(holdMilliseconds) / 1000)
        try store.releaseLease(holder: holder)
    }

    static func address(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("not an address: \(text)") }
        return address
    }

    /// Writes one line straight to standard output (no buffering: the process may die next).
    static func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func usage() -> Never {
        FileHandle.standardError.write(Data("usage: store-crash-writer write DIR | lease DIR HOLDER HOLD_MS\n".utf8))
        exit(2)
    }
}
