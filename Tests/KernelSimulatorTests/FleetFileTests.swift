import Foundation
import GRDB
import Kernel
import KernelSimulator
import MeshwardCore
import Testing

/// The simulated fleet's SQLite file: one row per node, incremental saves, refusals of files
/// that are not (or no longer) a fleet, and the migration from the JSON file of earlier versions.
@Suite("The simulated fleet's SQLite file")
final class FleetFileTests {
    /// A directory of this test's own, removed when the test ends.
    let directory: URL
    /// The fleet file most tests use, in `directory`.
    let file: URL

    init() throws {
        directory = try PersistenceTests.temporaryDirectory()
        file = directory.appendingPathComponent("fleet.sqlite")
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// `PersistenceTests.busyFleet()`, saved to `file`, with its later row writes recorded
    /// (`recordWrites`) when asked.
    func savedBusyFleet(recordingWrites: Bool) throws -> SimulatedFleet {
        let (fleet, _) = try PersistenceTests.busyFleet()
        try fleet.save(to: file)
        if recordingWrites { try Self.recordWrites(in: file) }
        return fleet
    }

    /// Records every insert, update and delete of a `nodes` row in a `writes` table of the file,
    /// so that a test sees which rows a save touched (even a row rewritten with the same bytes).
    static func recordWrites(in file: URL) throws {
        let queue = try DatabaseQueue(path: file.path)
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE writes (kind TEXT NOT NULL, name TEXT NOT NULL);
                    CREATE TRIGGER insert_node AFTER INSERT ON nodes
                        BEGIN INSERT INTO writes VALUES ('insert', new.name); END;
                    CREATE TRIGGER update_node AFTER UPDATE ON nodes
                        BEGIN INSERT INTO writes VALUES ('update', new.name); END;
                    CREATE TRIGGER delete_node AFTER DELETE ON nodes
                        BEGIN INSERT INTO writes VALUES ('delete', old.name); END;
                    """)
        }
    }

    /// The rows written since `recordWrites`, as "kind name", in the order they were written.
    static func writes(in file: URL) throws -> [String] {
        try DatabaseQueue(path: file.path).read { db in
            try Row.fetchAll(db, sql: "SELECT kind, name FROM writes ORDER BY rowid").map {
                "\($0[0] as String) \($0[1] as String)"
            }
        }
    }

    /// Replaces the body of `node`'s row with `body`.
    static func setBody(of node: String, to body: (Data) -> Data, in file: URL) throws {
        let queue = try DatabaseQueue(path: file.path)
        try queue.write { db in
            let old = try #require(
                try Data.fetchOne(db, sql: "SELECT body FROM nodes WHERE name = ?", arguments: [node]))
            try db.execute(sql: "UPDATE nodes SET body = ? WHERE name = ?", arguments: [body(old), node])
        }
    }

    @Test("a fleet loads back with its SA counters, replay windows, policies, statistics, faults and unreachable node")
    func roundTripKeepsEveryField() throws {
        let (fleet, _) = try PersistenceTests.busyFleet()
        let summary = try fleet.save(to: file)
        #expect(summary.rewroteEverything && summary.writtenNodes == ["a", "b", "c"])
        let loaded = try SimulatedFleet.load(from: file).state
        #expect(loaded == fleet.state)
        #expect(loaded.currentTime == 1_700_000_000)
        // What equality compares is there, not defaults on both sides.
        let a = try #require(loaded.nodes["a"])
        let b = try #require(loaded.nodes["b"])
        #expect(a.securityAssociations.count == 3 && b.securityAssociations.count == 2)
        #expect(a.securityAssociations.contains { $0.counters.packets == 10 && $0.counters.useTime == 1_700_000_000 })
        #expect(b.policies.contains { $0.direction == .forward && $0.selector.traffic.destinationPort == 443 })
        #expect(loaded.nodes["c"]?.isReachable == false)
        #expect(loaded.node(holding: FleetValues.address(of: "b")) == "b", "the address index is rebuilt")
    }

    @Test("a save after one node changed writes that node's row and no other")
    func saveWritesOnlyTheChangedNode() throws {
        let fleet = try savedBusyFleet(recordingWrites: true)

        fleet.wipe(node: "a")
        let summary = try fleet.save(to: file)
        #expect(!summary.rewroteEverything)
        #expect(summary.writtenNodes == ["a"] && summary.removedNodes.isEmpty)
        #expect(try Self.writes(in: file) == ["update a"])
        #expect(try SimulatedFleet.load(from: file).state == fleet.state)

        // Nothing changed: nothing is written (the clock alone moves in the fleet row).
        #expect(try fleet.save(to: file).writtenNodes.isEmpty)
        #expect(try Self.writes(in: file) == ["update a"])
    }

    @Test("a fleet loaded from the file saves only the nodes changed since the load")
    func loadedFleetSavesOnlyChanges() throws {
        _ = try savedBusyFleet(recordingWrites: true)

        let loaded = try SimulatedFleet.load(from: file)
        loaded.setReachable("c", true)
        loaded.withState { $0.addNode("d", addresses: [FleetValues.address("198.18.1.4")]) }
        #expect(try loaded.save(to: file).writtenNodes == ["c", "d"])
        #expect(try Self.writes(in: file).sorted() == ["insert d", "update c"])
        #expect(try SimulatedFleet.load(from: file).state == loaded.state)
    }

    @Test("a node removed from the fleet has its row deleted by the next save, and no other row is written")
    func removedNodeRowDeleted() throws {
        let fleet = try savedBusyFleet(recordingWrites: true)

        fleet.withState { $0.removeNode("b") }
        let summary = try fleet.save(to: file)
        #expect(summary.removedNodes == ["b"] && summary.writtenNodes.isEmpty)
        #expect(try Self.writes(in: file) == ["delete b"])
        #expect(try SimulatedFleet.load(from: file).state.nodes.keys.sorted() == ["a", "c"])
    }

    @Test("a save to a file someone else wrote since, or to another file, writes every node")
    func saveAfterAnotherWriterRewritesEverything() throws {
        let fleet = try savedBusyFleet(recordingWrites: false)
        // Another writer (a crash hook saving the state it holds) puts an older fleet there.
        var other = fleet.state
        other.removeNode("c")
        try other.save(to: file)

        fleet.wipe(node: "a")
        let summary = try fleet.save(to: file)
        #expect(summary.rewroteEverything && summary.writtenNodes == ["a", "b", "c"])
        #expect(try SimulatedFleet.load(from: file).state == fleet.state)

        let elsewhere = directory.appendingPathComponent("elsewhere.sqlite")
        #expect(try fleet.save(to: elsewhere).rewroteEverything)
        #expect(try SimulatedFleet.load(from: elsewhere).state == fleet.state)
    }

    @Test("a simulated-fleet.json beside a missing .sqlite is migrated once, then moved aside")
    func migratesLegacyJSON() throws {
        let file = directory.appendingPathComponent("simulated-fleet.sqlite")
        let legacy = directory.appendingPathComponent("simulated-fleet.json")
        let (fleet, _) = try PersistenceTests.busyFleet()
        #expect(
            FileManager.default.createFile(
                atPath: legacy.path, contents: try JSONEncoder().encode(fleet.state),
                attributes: [.posixPermissions: 0o600]))

        #expect(try SimulatedFleet.load(from: file).state == fleet.state)
        #expect(!FileManager.default.fileExists(atPath: legacy.path), "the JSON file stayed in place")
        #expect(FileManager.default.fileExists(atPath: legacy.path + ".migrated"))
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        // A JSON file that appears again is not migrated over the SQLite file.
        #expect(
            FileManager.default.createFile(
                atPath: legacy.path, contents: try JSONEncoder().encode(SimulatedFleetState()),
                attributes: [.posixPermissions: 0o600]))
        #expect(try SimulatedFleet.load(from: file).state == fleet.state)
        #expect(FileManager.default.fileExists(atPath: legacy.path))
    }

    @Test("a simulated-fleet.json that others may read is refused, not migrated")
    func looseLegacyJSONRefused() throws {
        let file = directory.appendingPathComponent("simulated-fleet.sqlite")
        let legacy = directory.appendingPathComponent("simulated-fleet.json")
        #expect(
            FileManager.default.createFile(
                atPath: legacy.path, contents: try JSONEncoder().encode(SimulatedFleetState()),
                attributes: [.posixPermissions: 0o644]))
        #expect {
            try SimulatedFleet.load(from: file)
        } throws: { error in
            "\(error)".contains("has mode 644") && "\(error)".contains("chmod 600 \(legacy.path)")
        }
        #expect(!FileManager.default.fileExists(atPath: file.path))
    }

    @Test(
        "a journal beside the fleet file that others may read is refused with the chmod that fixes it",
        arguments: ["-journal", "-wal", "-shm"])
    func looseCompanionRefused(suffix: String) throws {
        _ = try savedBusyFleet(recordingWrites: false)
        let companion = file.path + suffix
        #expect(
            FileManager.default.createFile(atPath: companion, contents: nil, attributes: [.posixPermissions: 0o644]))
        #expect {
            try SimulatedFleet.load(from: file)
        } throws: { error in
            "\(error)".contains("has mode 644") && "\(error)".contains("chmod 600 \(companion)")
        }
    }

    /// One way a node's row can be damaged, with what the error says about it.
    struct Damage: Sendable, CustomTestStringConvertible {
        let name: String
        let change: @Sendable (Data) -> Data
        let says: String
        var testDescription: String { name }
    }

    static let damages = [
        Damage(name: "truncated", change: { $0.prefix($0.count - 9) }, says: "truncated"),
        Damage(name: "cut after the version", change: { $0.prefix(1) }, says: "truncated"),
        Damage(name: "empty", change: { _ in Data() }, says: "truncated"),
        Damage(name: "of an unknown version", change: { Data([99]) + $0.dropFirst() }, says: "body version 99"),
        Damage(name: "with bytes appended", change: { $0 + Data([1, 2, 3]) }, says: "3 bytes after the end"),
        Damage(name: "overwritten with garbage", change: { Data(repeating: 0xA5, count: $0.count) }, says: "at byte"),
    ]

    @Test("a node row that is damaged is refused with the file and the node named", arguments: damages)
    func damagedBodyRefused(damage: Damage) throws {
        _ = try savedBusyFleet(recordingWrites: false)
        try Self.setBody(of: "b", to: damage.change, in: file)
        #expect {
            try SimulatedFleet.load(from: file)
        } throws: { error in
            let text = "\(error)"
            return text.contains(file.path) && text.contains("node b cannot be read") && text.contains(damage.says)
        }
    }

    @Test(
        "observations read from the file equal a loaded fleet's, for either owner: foreign SAs, statistics, an unreachable node"
    )
    func observationsFromFileEqualLoadedFleet() throws {
        let saved = try savedBusyFleet(recordingWrites: false)
        let loaded = try SimulatedFleet.load(from: file)
        for reqid in [FleetValues.reqid, FleetValues.foreignReqid] {
            let direct = try #require(
                try SimulatedFleet.observations(from: file, of: ["a", "b", "c", "z"], reqid: reqid))
            #expect(direct.keys.sorted() == ["a", "b", "c"], "a node the file does not hold is left out")
            for node in ["a", "b"] {
                let expected = try loaded.withState { try $0.observe(node: node, reqid: reqid) }
                #expect(try direct[node]?.get() == expected)
                #expect(expected == (try saved.withState { try $0.observe(node: node, reqid: reqid) }))
            }
            #expect(try direct["a"]?.get().foreignSPIs.isEmpty == false, "node a holds an SA of the other owner")
            guard case .failure(let error) = direct["c"] else {
                Issue.record("the unreachable node c was read: \(String(describing: direct["c"]))")
                continue
            }
            #expect(
                "\(error)" == "\(KernelError.unreachable(node: "c", reason: "the simulated node is not answering"))")
        }
        let some = try #require(try SimulatedFleet.observations(from: file, of: ["b"], reqid: FleetValues.reqid))
        #expect(Array(some.keys) == ["b"], "rows of other nodes are not decoded")
    }

    @Test("observations from a missing file are nil; a damaged row is refused naming the node", arguments: damages)
    func observationsRefuseDamage(damage: Damage) throws {
        #expect(try SimulatedFleet.observations(from: file, of: ["a"], reqid: FleetValues.reqid) == nil)
        _ = try savedBusyFleet(recordingWrites: false)
        try Self.setBody(of: "b", to: damage.change, in: file)
        #expect {
            try SimulatedFleet.observations(from: file, of: ["a", "b"], reqid: FleetValues.reqid)
        } throws: { error in
            let text = "\(error)"
            return text.contains(file.path) && text.contains("node b cannot be read") && text.contains(damage.says)
        }
    }

    @Test("a SQLite database that is not a simulated fleet is refused with its path")
    func otherDatabaseRefused() throws {
        #expect(
            FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]))
        try DatabaseQueue(path: file.path).write { db in try db.execute(sql: "CREATE TABLE players (name TEXT)") }
        #expect {
            try SimulatedFleet.load(from: file)
        } throws: { error in
            "\(error)".contains(file.path) && "\(error)".contains("is not a simulated fleet")
                && "\(error)".contains("move it away to start empty")
        }
    }

    @Test("a file left empty by a first save that never committed loads as an empty fleet")
    func emptyFileIsEmptyFleet() throws {
        #expect(
            FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]))
        #expect(try SimulatedFleet.load(from: file).state == SimulatedFleetState())
        let (fleet, _) = try PersistenceTests.busyFleet()
        #expect(try fleet.save(to: file).rewroteEverything)
        #expect(try SimulatedFleet.load(from: file).state == fleet.state)
    }
}
