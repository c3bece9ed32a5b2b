import ArgumentParser
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `meshward-bench simulator`: observing a simulated hub node with many peers, applying one
/// large batch, and saving and loading the fleet, with the peak resident memory.
struct SimulatorBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Time observe and apply on the simulated kernel."
    )

    @Option(help: "Peers of the observed hub node; each gives 2 SAs and 2 policies.")
    var peers = 2_000

    @Option(help: "Operations in the applied batch.")
    var operations = 10_000

    @Option(help: "Repetitions of each measurement; the median is reported.")
    var repetitions = 5

    struct Measurement: Codable {
        let name: String
        let objects: Int
        let medianSeconds: Double
        let objectsPerSecond: Double
    }

    struct Report: Codable {
        let benchmark: String
        let peers: Int
        let operations: Int
        let repetitions: Int
        let measurements: [Measurement]
        let peakResidentKiB: Int
    }

    mutating func run() async throws {
        let reqid = Reqid.meshwardDefault
        let hubAddress = Self.address(index: 0)
        let peerOperations = try (1...peers).flatMap {
            try Self.channelOperations(hub: hubAddress, peer: Self.address(index: $0))
        }
        let observed = SimulatedFleet()
        observed.withState { state in
            state.addNode("hub", addresses: [hubAddress])
            for operation in peerOperations { _ = state.apply(operation, on: "hub") }
        }
        let hub = observed.kernel(for: "hub", reqid: reqid)
        var objectCount = 0
        let observeSeconds = try await Self.median(repetitions) {
            let observation = try await hub.observe()
            objectCount = observation.securityAssociations.count + observation.policies.count
        }

        let batchPeers = (operations + 3) / 4
        let batch = Array(
            try (1...batchPeers).flatMap {
                try Self.channelOperations(hub: hubAddress, peer: Self.address(index: $0))
            }.prefix(operations))
        var applied = 0
        let applySeconds = try await Self.median(repetitions) {
            let fleet = SimulatedFleet()
            fleet.withState { $0.addNode("hub", addresses: [hubAddress]) }
            let results = try await fleet.kernel(for: "hub", reqid: reqid).apply(batch)
            applied = results.filter(\.outcome.isApplied).count
        }
        guard applied == batch.count else {
            throw ValidationError("only \(applied) of \(batch.count) operations applied")
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.json")
        let saveSeconds = try await Self.median(repetitions) { try observed.save(to: file) }
        let loadSeconds = try await Self.median(repetitions) { _ = try SimulatedFleet.load(from: file) }

        let measurements = [
            Measurement(
                name: "observe", objects: objectCount, medianSeconds: observeSeconds,
                objectsPerSecond: Double(objectCount) / observeSeconds),
            Measurement(
                name: "apply", objects: batch.count, medianSeconds: applySeconds,
                objectsPerSecond: Double(batch.count) / applySeconds),
            Measurement(
                name: "save", objects: peerOperations.count, medianSeconds: saveSeconds,
                objectsPerSecond: Double(peerOperations.count) / saveSeconds),
            Measurement(
                name: "load", objects: peerOperations.count, medianSeconds: loadSeconds,
                objectsPerSecond: Double(peerOperations.count) / loadSeconds),
        ]
        let report = Report(
            benchmark: "simulator", peers: peers, operations: batch.count, repetitions: repetitions,
            measurements: measurements, peakResidentKiB: Self.peakResidentKiB()
        )
        print(Self.table(report))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// 198.18.0.0/15 host `index`.
    static func address(index: Int) -> IPAddress {
        let value = UInt32(index + 1)
        guard
            let address = IPAddress(bytes: [
                198, 18 + UInt8((value >> 16) & 1), UInt8((value >> 8) & 0xFF),
                UInt8(value & 0xFF),
            ])
        else { fatalError("unreachable") }
        return address
    }

    /// The hub's objects of the two channels with one peer: 2 SAs (fresh keys), 2 policies.
    static func channelOperations(hub: IPAddress, peer: IPAddress) throws -> [KernelOperation] {
        let reqid = Reqid.meshwardDefault
        let spi = SPI(0x100 + UInt32(truncatingIfNeeded: peer.bytes[2]) << 8 + UInt32(peer.bytes[3]))
        let outbound = SecurityAssociation(
            source: hub, destination: peer, spi: spi, reqid: reqid, cipher: .aesGCM256,
            key: .material(try KeyMaterial.random(count: Cipher.aesGCM256.keyLength)))
        let inbound = SecurityAssociation(
            source: peer, destination: hub, spi: spi, reqid: reqid, cipher: .aesGCM256,
            key: .material(try KeyMaterial.random(count: Cipher.aesGCM256.keyLength)))
        let out = PolicySelector(source: IPPrefix(host: hub), destination: IPPrefix(host: peer))
        let into = PolicySelector(source: IPPrefix(host: peer), destination: IPPrefix(host: hub))
        return [
            .addSA(outbound), .addSA(inbound),
            .addPolicy(
                SecurityPolicy(
                    selector: out, direction: .outbound,
                    template: PolicyTemplate(family: .ipv4, spi: spi, reqid: reqid, isOptional: false))),
            .addPolicy(
                SecurityPolicy(
                    selector: into, direction: .inbound,
                    template: PolicyTemplate(family: .ipv4, spi: nil, reqid: reqid, isOptional: false))),
        ]
    }

    /// The median wall time of `count` runs of `body`, in seconds.
    static func median(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<max(1, count) {
            let elapsed = try await clock.measure { try await body() }
            samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        return samples.sorted()[samples.count / 2]
    }

    /// `ru_maxrss` of this process, in KiB (Linux reports KiB).
    static func peakResidentKiB() -> Int {
        var usage = rusage()
        #if canImport(Glibc)
            getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        return Int(usage.ru_maxrss)
    }

    static func table(_ report: Report) -> String {
        func pad(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        var lines = [
            "simulator: hub with \(report.peers) peers, batch of \(report.operations) operations, "
                + "median of \(report.repetitions)",
            "measurement   objects   median ms   objects/s",
        ]
        for measurement in report.measurements {
            lines.append(
                measurement.name.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + pad("\(measurement.objects)", 9)
                    + pad(String(format: "%.2f", measurement.medianSeconds * 1_000), 12)
                    + pad(String(format: "%.0f", measurement.objectsPerSecond), 12)
            )
        }
        lines.append("peak resident memory: \(report.peakResidentKiB) KiB")
        return lines.joined(separator: "\n")
    }
}
