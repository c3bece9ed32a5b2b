import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

@Suite("Persistence")
struct PersistenceTests {
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-sim-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A three-node fleet: a channel each way between a and b on random keys, with traffic
    /// (counters, replay windows), scheduled faults and foreign objects (an SA, and a forward
    /// policy on ports with an IPv6 selector), and c unreachable with no kernel objects.
    static func busyFleet() throws -> (SimulatedFleet, [KeyMaterial]) {
        let ciphers: [Cipher] = [.aesGCM256, .aesGCM256, .aesCBCHMACSHA256, .aesGCM256]
        let keys = try ciphers.map { try KeyMaterial.random(count: $0.keyLength) }
        let fleet = SimulatedFleet(state: FleetValues.state(["a", "b", "c"]))
        let ab = Channel(from: "a", to: "b")
        let ba = Channel(from: "b", to: "a")
        fleet.withState { state in
            state.currentTime = 1_700_000_000
            let generations = [ab: keys[0], ba: keys[1]]
            for (channel, key) in generations {
                let generation = Generation(channel == ab ? 0x101 : 0x102)
                let association = SecurityAssociation(
                    source: channel.source, destination: channel.destination, spi: generation.spi,
                    reqid: FleetValues.reqid, cipher: .aesGCM256, key: .material(key)
                )
                #expect(state.apply(.addSA(association), on: channel.from) == .applied)
                #expect(state.apply(.addSA(association), on: channel.to) == .applied)
                #expect(state.apply(.addPolicy(channel.inboundPolicy(required: true)), on: channel.to) == .applied)
                #expect(state.apply(.addPolicy(channel.outboundPolicy(generation)), on: channel.from) == .applied)
            }
            let foreign = SecurityAssociation(
                source: ab.source, destination: FleetValues.address("198.18.7.7"), spi: SPI(0x999),
                reqid: FleetValues.foreignReqid, cipher: .aesCBCHMACSHA256, key: .material(keys[2])
            )
            #expect(state.apply(.addSA(foreign), on: "a") == .applied)
            for _ in 0..<10 {
                _ = state.send(from: "a", to: ab.destination)
                _ = state.send(from: "b", to: ab.source)
            }
            let forward = SecurityPolicy(
                selector: PolicySelector(
                    source: IPPrefix(address: FleetValues.address("2001:db8::1"), length: 64) ?? .any(.ipv6),
                    destination: .any(.ipv6), traffic: TrafficMatch(transport: .tcp, destinationPort: 443)),
                direction: .forward, priority: 7,
                template: PolicyTemplate(
                    family: .ipv6, spi: SPI(0x777), reqid: FleetValues.foreignReqid, isOptional: true)
            )
            #expect(state.apply(.addPolicy(forward), on: "b", reqid: FleetValues.foreignReqid) == .applied)
            state.failOperation(on: "b", nth: 3, errno: 5)
            state.stopAnswering(on: "a", afterOperations: 7)
            state.setReachable("c", false)
        }
        return (fleet, keys)
    }

    @Test("a saved fleet loads back equal, and carries on where it stopped")
    func roundTrip() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.sqlite")
        let (fleet, _) = try Self.busyFleet()
        try fleet.save(to: file)
        let loaded = try SimulatedFleet.load(from: file)
        #expect(loaded.state == fleet.state)
        #expect(
            try loaded.state.observe(node: "a", reqid: FleetValues.reqid)
                == fleet.state.observe(node: "a", reqid: FleetValues.reqid))
        // The replay state survived: the next packet is accepted on both, and equally.
        let ab = Channel(from: "a", to: "b")
        #expect(loaded.send(from: "a", to: ab.destination) == fleet.send(from: "a", to: ab.destination))
        #expect(loaded.state == fleet.state)
    }

    @Test("the saved file is private and holds no key bytes in any encoding")
    func noKeysOnDisk() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.sqlite")
        let (fleet, keys) = try Self.busyFleet()
        try fleet.save(to: file)
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        // The node bodies are stored as they are encoded, uncompressed: a key's bytes would show.
        let contents = try Data(contentsOf: file)
        func holds(_ text: String) -> Bool { contents.range(of: Data(text.utf8)) != nil }
        for key in keys {
            let hex = key.bytes.map { String(format: "%02x", $0) }.joined()
            #expect(contents.range(of: Data(key.bytes)) == nil, "the key's raw bytes are in the file")
            #expect(!holds(hex) && !holds(hex.uppercased()))
            #expect(!holds(Data(key.bytes).base64EncodedString()))
            #expect(!holds(key.bytes.map(String.init).joined(separator: ",")))
            // The fourth key was never installed: only installed keys leave a fingerprint.
            #expect(holds(key.fingerprint) == (key != keys[3]), "the fingerprint is what is kept")
        }
        #expect(!FileManager.default.fileExists(atPath: file.path + "-journal"), "the save left its journal")
    }

    @Test("a missing file is an empty fleet; a corrupt file is an error that names it")
    func missingAndCorrupt() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.sqlite")
        #expect(try SimulatedFleet.load(from: file).state == SimulatedFleetState())
        try Data("{not a database".utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        #expect {
            try SimulatedFleet.load(from: file)
        } throws: { error in
            "\(error)".contains(file.path) && "\(error)".contains("is not a simulated fleet")
        }
    }

    @Test(
        "a fleet file that group or others may read is refused with the chmod that fixes it",
        arguments: [0o644, 0o640, 0o604, 0o660])
    func refusesLooseFile(mode: Int) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.sqlite")
        let (fleet, _) = try Self.busyFleet()
        try fleet.save(to: file)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
        #expect {
            try SimulatedFleet.load(from: file)
        } throws: { error in
            "\(error)".contains("has mode \(String(mode, radix: 8))") && "\(error)".contains("chmod 600 \(file.path)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
        #expect(try SimulatedFleet.load(from: file).state == fleet.state)
    }

    @Test("saving over an existing file replaces it")
    func replaces() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("fleet.sqlite")
        let (fleet, _) = try Self.busyFleet()
        try fleet.save(to: file)
        fleet.wipe(node: "a")
        try fleet.save(to: file)
        #expect(try SimulatedFleet.load(from: file).state.nodes["a"]?.securityAssociations.isEmpty == true)
    }
}
