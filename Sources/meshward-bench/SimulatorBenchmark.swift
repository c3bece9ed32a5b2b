import ArgumentParser
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore

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

    /// One measurement: median wall and CPU seconds over the repetitions.
    struct Measurement {
        let name: String
        let objects: Int
        let medianSeconds: Double
        let medianCPUSeconds: Double
        var objectsPerSecond: Double { Double(objects) / medianSeconds }
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
        let observe = try await Self.medianTimes(repetitions) {
            let observation = try await hub.observe()
            objectCount = observation.securityAssociations.count + observation.policies.count
        }

        let batchPeers = (operations + 3) / 4
        let batch = Array(
            try (1...batchPeers).flatMap {
                try Self.channelOperations(hub: hubAddress, peer: Self.address(index: $0))
            }.prefix(operations))
        var applied = 0
        let apply = try await Self.medianTimes(repetitions) {
            let fleet = SimulatedFleet()
            fleet.withState { $0.addNode("hub", addresses: [hubAddress]) }
            let results = try await fleet.kernel(for: "hub", reqid: reqid).apply(batch)
            applied = results.filter(\.outcome.isApplied).count
        }
        guard applied == batch.count else {
            throw ValidationError("only \(applied) of \(batch.count) operations applied")
        }

        let directory = try FleetGenerator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.sqlite")
        let save = try await Self.medianTimes(repetitions) { try observed.save(to: file) }
        let load = try await Self.medianTimes(repetitions) { _ = try SimulatedFleet.load(from: file) }

        let measurements = [
            Measurement(
                name: "observe", objects: objectCount, medianSeconds: observe.wall, medianCPUSeconds: observe.cpu),
            Measurement(name: "apply", objects: batch.count, medianSeconds: apply.wall, medianCPUSeconds: apply.cpu),
            Measurement(
                name: "save", objects: peerOperations.count, medianSeconds: save.wall, medianCPUSeconds: save.cpu),
            Measurement(
                name: "load", objects: peerOperations.count, medianSeconds: load.wall, medianCPUSeconds: load.cpu),
        ]
        var report = BenchmarkReport("simulator")
        report.add("hub peers", "\(peers)", key: "peers", value: peers)
        report.add("applied batch", "\(batch.count) operations", key: "operations", value: batch.count)
        report.add("repetitions", "\(repetitions) (median reported)", key: "repetitions", value: repetitions)
        var table = TextTable(["measurement", "objects", "median ms", "median cpu ms", "objects/s"])
        for measurement in measurements {
            table.add([
                measurement.name, "\(measurement.objects)", String(format: "%.2f", measurement.medianSeconds * 1_000),
                String(format: "%.2f", measurement.medianCPUSeconds * 1_000),
                String(format: "%.0f", measurement.objectsPerSecond),
            ])
        }
        report.add(table)
        report.record(
            "measurements",
            measurements.map {
                [
                    "name": $0.name, "objects": $0.objects, "medianSeconds": $0.medianSeconds,
                    "medianCPUSeconds": $0.medianCPUSeconds, "objectsPerSecond": $0.objectsPerSecond,
                ] as [String: Any]
            })
        let peakKiB = BenchmarkReport.peakResidentKiB()
        report.add("peak resident memory", "\(peakKiB) KiB", key: "peakResidentKiB", value: peakKiB)
        try report.print()
    }

    /// 198.18.0.0/15 host `index + 1`.
    static func address(index: Int) -> IPAddress { FleetGenerator.hostAddress(index + 1) }

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

    /// The median wall and CPU seconds of `count` runs of `body`.
    static func medianTimes(_ count: Int, _ body: () async throws -> Void) async throws -> (wall: Double, cpu: Double) {
        var wall: [Double] = []
        var cpu: [Double] = []
        for _ in 0..<max(1, count) {
            let timed = try await measureBoth { try await body() }
            wall.append(timed.wall.seconds)
            cpu.append(timed.cpu.seconds)
        }
        return (median(wall), median(cpu))
    }
}
