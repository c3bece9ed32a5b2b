import ArgumentParser
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore

/// `meshward-bench fleet-file`: saving and loading the simulated fleet file of a converged full
/// mesh, in the SQLite file `endpoint: sim` keeps (whole, and after one node changed) beside the
/// single JSON document earlier versions kept, with the files' sizes.
struct FleetFileBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-file",
        abstract: "Time saving and loading the simulated fleet file of a full mesh."
    )

    @Option(help: "Nodes of the full mesh; each of the n(n-1) channels puts 2 SAs and 2 policies in the kernels.")
    var nodes = 300

    @Option(help: "Repetitions of each measurement; the median is reported.")
    var repetitions = 3

    @Flag(inversion: .prefixedNo, help: "Also time the JSON document of earlier versions (slow and large at scale).")
    var json = true

    mutating func run() async throws {
        let (fleet, channels) = try Self.convergedMesh(nodes: nodes)
        let directory = try FleetGenerator.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("simulated-fleet.sqlite")
        let jsonFile = directory.appendingPathComponent("simulated-fleet.json")

        let saveAll = try await SimulatorBenchmark.medianTimes(repetitions) {
            try fleet.state.save(to: file)
        }
        let load = try await SimulatorBenchmark.medianTimes(repetitions) {
            _ = try SimulatedFleet.load(from: file)
        }
        let loaded = try SimulatedFleet.load(from: file)
        guard loaded.state == fleet.state else { throw ValidationError("the loaded fleet differs from the saved one") }
        var changed = 0
        let saveOne = try await SimulatorBenchmark.medianTimes(repetitions) {
            changed += 1
            loaded.setReachable("node-1", changed % 2 == 0)
            let summary = try loaded.save(to: file)
            guard summary.writtenNodes == ["node-1"] else {
                throw ValidationError("one changed node wrote \(summary.writtenNodes.count) rows")
            }
        }
        let sqliteBytes = try Self.size(of: file)

        var rows: [(String, String, (wall: Double, cpu: Double), Int)] = [
            ("sqlite", "save every node", saveAll, sqliteBytes),
            ("sqlite", "load", load, sqliteBytes),
            ("sqlite", "save one changed node", saveOne, sqliteBytes),
        ]
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let jsonSave = try await SimulatorBenchmark.medianTimes(repetitions) {
                try encoder.encode(fleet.state).write(to: jsonFile)
            }
            let jsonLoad = try await SimulatorBenchmark.medianTimes(repetitions) {
                _ = try JSONDecoder().decode(SimulatedFleetState.self, from: Data(contentsOf: jsonFile))
            }
            let jsonBytes = try Self.size(of: jsonFile)
            rows += [("json (earlier)", "save", jsonSave, jsonBytes), ("json (earlier)", "load", jsonLoad, jsonBytes)]
        }

        var report = BenchmarkReport("fleet-file")
        report.add("mesh", "\(nodes) nodes, \(channels) channels", key: "nodes", value: nodes)
        report.add("repetitions", "\(repetitions) (median reported)", key: "repetitions", value: repetitions)
        var table = TextTable(["format", "measurement", "median ms", "median cpu ms", "file MB"])
        for (format, name, times, bytes) in rows {
            table.add([
                format, name, String(format: "%.1f", times.wall * 1_000), String(format: "%.1f", times.cpu * 1_000),
                String(format: "%.1f", Double(bytes) / 1_000_000),
            ])
        }
        report.add(table)
        report.record(
            "measurements",
            rows.map {
                ["format": $0.0, "name": $0.1, "medianSeconds": $0.2.wall, "medianCPUSeconds": $0.2.cpu, "bytes": $0.3]
                    as [String: Any]
            })
        report.peakMemory()
        try report.print()
    }

    /// A full mesh of `nodes` nodes whose kernels hold every channel's two SAs (random keys) and
    /// two policies, as a converged `apply` leaves them; returns the fleet and its channel count.
    static func convergedMesh(nodes: Int) throws -> (SimulatedFleet, Int) {
        let reqid = Reqid.meshwardDefault
        var state = SimulatedFleetState(currentTime: 1_700_000_000)
        let addresses = (1...nodes).map { FleetGenerator.hostAddress($0) }
        for (index, address) in addresses.enumerated() { state.addNode("node-\(index + 1)", addresses: [address]) }
        var spi = SPI.minimumIssued
        var channels = 0
        for from in 0..<nodes {
            for to in 0..<nodes where to != from {
                spi += 1
                channels += 1
                let association = SecurityAssociation(
                    source: addresses[from], destination: addresses[to], spi: SPI(spi), reqid: reqid,
                    cipher: .aesGCM256, key: .material(try KeyMaterial.random(count: Cipher.aesGCM256.keyLength)))
                let selector = PolicySelector(
                    source: IPPrefix(host: addresses[from]), destination: IPPrefix(host: addresses[to]))
                _ = state.apply(.addSA(association), on: "node-\(from + 1)")
                _ = state.apply(.addSA(association), on: "node-\(to + 1)")
                _ = state.apply(
                    .addPolicy(
                        SecurityPolicy(
                            selector: selector, direction: .outbound,
                            template: PolicyTemplate(family: .ipv4, spi: SPI(spi), reqid: reqid, isOptional: false))),
                    on: "node-\(from + 1)")
                _ = state.apply(
                    .addPolicy(
                        SecurityPolicy(
                            selector: selector, direction: .inbound,
                            template: PolicyTemplate(family: .ipv4, spi: nil, reqid: reqid, isOptional: false))),
                    on: "node-\(to + 1)")
            }
        }
        return (SimulatedFleet(state: state), channels)
    }

    static func size(of file: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.intValue ?? 0
    }
}
