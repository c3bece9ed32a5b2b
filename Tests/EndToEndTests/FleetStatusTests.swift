import Controller
import Foundation
import KernelSimulator
import Logging
import MeshwardCommands
import MeshwardCore
import MeshwardTestKit
import Reconciler
import Testing

/// `status` at fleet scale: a summary header, filters, and per channel the SA counters, the
/// time to the next rekey (or how overdue it is) and the drain deadline.
@Suite("Fleet status", .serialized)
struct FleetStatusTests {
    static let fleet = GuardTests.fleet

    static func fleetFile(_ cli: MeshwardCLI) -> URL {
        cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite")
    }

    @Test("the summary counts reachable and unreachable nodes, channels by step, drift, overdue rekeys and drops")
    func summaryCounts() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try GuardTests.spec()).status == 0)
        let healthy = try await cli.json("status").1["summary"] as? [String: Any]
        #expect(healthy?["nodes_reachable"] as? Int == 3)
        #expect(healthy?["nodes_unreachable"] as? Int == 0)
        #expect(healthy?["channels_by_step"] as? [String: Int] == ["established": 4])
        #expect(healthy?["channels_drifted"] as? Int == 0)
        #expect(healthy?["rekeys_overdue"] as? Int == 0)
        #expect(healthy?["drop_counters"] as? [String: Any] != nil)

        // delta stops answering: one unreachable node, and its two channels cannot be checked.
        let file = Self.fleetFile(cli)
        let simulated = try SimulatedFleet.load(from: file)
        simulated.setReachable("delta", false)
        try simulated.save(to: file)
        let (status, document) = try await cli.json("status")
        #expect(status == 1)
        let summary = document["summary"] as? [String: Any]
        #expect(summary?["nodes_reachable"] as? Int == 2)
        #expect(summary?["nodes_unreachable"] as? Int == 1)
        #expect(summary?["channels_drifted"] as? Int == 2)

        let text = try await cli.run("status").output
        #expect(text.contains("summary:\n  nodes: 2 reachable, 1 unreachable"), "\(text)")
        #expect(text.contains("  channels: 4 established (4)"), "\(text)")
        #expect(text.contains("  drifted: 2; overdue rekeys: 0"), "\(text)")
    }

    @Test("a drop counter that moved is summed in the summary and names its node")
    func dropCountersInSummary() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try GuardTests.spec()).status == 0)
        // beta sends to delta under an SA delta no longer has: delta's XfrmInNoStates moves.
        let file = Self.fleetFile(cli)
        let simulated = try SimulatedFleet.load(from: file)
        simulated.wipe(node: "delta")
        simulated.setReachable("delta", true)
        let outcome = simulated.send(from: "beta", to: try #require(IPAddress("198.18.7.3")))
        try simulated.save(to: file)
        let summary = try await cli.json("status").1["summary"] as? [String: Any]
        let drops = summary?["drop_counters"] as? [String: Int] ?? [:]
        #expect(!drops.isEmpty, "\(outcome): \(String(describing: summary))")
        #expect(summary?["nodes_with_drops"] as? [String] == ["delta"], "\(String(describing: summary))")
        let text = try await cli.run("status").output
        #expect(text.contains(" on delta"), "\(text)")
    }

    @Test("--step, --drift and --channel narrow the channel list, never the summary")
    func filters() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try GuardTests.spec()).status == 0)
        func listed(_ arguments: String...) async throws -> [String] {
            let document = try await cli.run(Array(arguments) + ["--output", "json"]).output
            let object = try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any]
            #expect((object?["summary"] as? [String: Any])?["channels_by_step"] as? [String: Int] == ["established": 4])
            return (object?["channels"] as? [[String: Any]] ?? []).compactMap { $0["channel"] as? String }
        }
        #expect(try await listed("status").count == 4)
        #expect(try await listed("status", "--channel", "alpha:beta") == ["alpha->beta/ipv4"])
        #expect(try await listed("status", "--step", "established").count == 4)
        #expect(try await listed("status", "--step", "draining").isEmpty)
        #expect(try await listed("status", "--drift").isEmpty)

        let file = Self.fleetFile(cli)
        let simulated = try SimulatedFleet.load(from: file)
        simulated.wipe(node: "alpha")
        try simulated.save(to: file)
        let drifted = try await listed("status", "--drift").sorted()
        #expect(drifted == ["alpha->beta/ipv4", "beta->alpha/ipv4"], "\(drifted)")
        #expect(try await cli.run("status", "--drift").status == 1, "drift still fails the command")

        let bad = try await cli.run("status", "--step", "sleeping")
        #expect(bad.status == 1)
        #expect(bad.error.contains("--step takes one of new, creating, established"), "\(bad.error)")
    }

    @Test("each channel shows its SA's packet and byte counters and first use as the kernels report them")
    func counters() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try GuardTests.spec()).status == 0)
        let file = Self.fleetFile(cli)
        let simulated = try SimulatedFleet.load(from: file)
        let beta = try #require(IPAddress("198.18.7.2"))
        simulated.withState { $0.currentTime = 1_800_000_000 }
        for _ in 0..<3 { _ = simulated.send(from: "alpha", to: beta) }
        try simulated.save(to: file)

        let channels = try await cli.json("status", "--channel", "alpha:beta").1["channels"] as? [[String: Any]] ?? []
        let outbound = channels.first?["outbound"] as? [String: Any]
        let inbound = channels.first?["inbound"] as? [String: Any]
        #expect(outbound?["packets"] as? Int == 3, "\(channels)")
        #expect(inbound?["packets"] as? Int == 3, "\(channels)")
        #expect((outbound?["bytes"] as? Int ?? 0) > 0)
        #expect(outbound?["first_used"] as? String == "2027-01-15T08:00:00Z", "\(channels)")
        let idle = try await cli.json("status", "--channel", "beta:alpha").1["channels"] as? [[String: Any]] ?? []
        #expect((idle.first?["outbound"] as? [String: Any])?["packets"] as? Int == 0)
        #expect((idle.first?["outbound"] as? [String: Any])?["first_used"] == nil, "never used: no first use")

        let text = try await cli.run("status", "--channel", "alpha:beta").output
        #expect(text.contains(" out 3 packets "), "\(text)")
    }

    @Test("next rekey reads 'rekey in 23h59m' when due later and 'rekey overdue 4m' once past, counted in the summary")
    func rekeyDueAndOverdue() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let clock = ManualClock(Date())
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let controller = MeshwardController(
            stateDirectory: cli.stateDirectory.path, logger: logger, clock: clock)
        _ = try await controller.apply(
            try MeshwardController.loadSpec([try GuardTests.spec()]).intent, source: "test", waitForDrain: true)

        clock.advance(by: 60)
        let due = try await controller.status()
        #expect(due.channels.allSatisfy { $0.rekeyInSeconds == 86_400 - 60 && !$0.rekeyOverdue }, "\(due.channels)")
        #expect(StatusText(due).text.contains("rekey in 23h59m"))

        clock.advance(by: 86_400 - 60 + 240)
        let late = try await controller.status()
        #expect(late.channels.allSatisfy { $0.rekeyInSeconds == -240 && $0.rekeyOverdue }, "\(late.channels)")
        #expect(late.summary?.rekeysOverdue == 4)
        #expect(StatusText(late).text.contains("rekey overdue 4m"))
    }

    @Test("a plan made before a rekey fell due is refused by apply: the changes differ")
    func planStaleOnceARekeyFallsDue() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let clock = ManualClock(Date())
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let controller = MeshwardController(stateDirectory: cli.stateDirectory.path, logger: logger, clock: clock)
        let intent = try MeshwardController.loadSpec([try GuardTests.spec()]).intent
        _ = try await controller.apply(intent, source: "test", waitForDrain: true)
        let plan = try await controller.plan(intent)
        #expect(!plan.changes)

        clock.advance(by: 86_400 + 1)
        await #expect {
            _ = try await controller.apply(
                intent, source: "test", waitForDrain: true, expected: plan, planFile: "p.json")
        } throws: { error in
            let text = "\(error)"
            return text.contains("the saved plan p.json is out of date")
                && text.contains("the changes differ; now also: rekey alpha->beta/ipv4")
        }
        let unchanged = try await controller.status()
        #expect(unchanged.channels.allSatisfy { $0.generation == 1 }, "nothing was rekeyed")
        // The same plan still applies while nothing moved on (so the refusal above can fail).
        clock.advance(by: -(86_400 + 1))
        _ = try await controller.apply(intent, source: "test", waitForDrain: true, expected: plan, planFile: "p.json")
    }

    @Test("a draining channel shows when its old inbound SA may go")
    func drainDeadline() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let slowDrain = try MeshwardCLI.writeSpec(Self.fleet.replacingOccurrences(of: "drain: 1s", with: "drain: 1h"))
        #expect(try await cli.run("apply", slowDrain).status == 0)
        #expect(try await cli.run("rekey", slowDrain, "--channel", "alpha:beta", "--no-wait").status == 0)

        let draining = try await cli.json("status", "--step", "draining").1["channels"] as? [[String: Any]] ?? []
        #expect(draining.compactMap { $0["channel"] as? String } == ["alpha->beta/ipv4"], "\(draining)")
        let until = (draining.first?["drain_until"] as? String).flatMap { try? Date($0, strategy: .iso8601) }
        let left = until.map { $0.timeIntervalSinceNow } ?? 0
        #expect(left > 3_000 && left <= 3_600, "about an hour left: \(left)")
        let established =
            try await cli.json("status", "--channel", "beta:alpha").1["channels"] as? [[String: Any]] ?? []
        #expect(established.first?["drain_until"] == nil)

        let text = try await cli.run("status", "--step", "draining").output
        #expect(text.contains("draining until ") && text.contains("m left)"), "\(text)")
    }

    @Test("durations read as seconds, minutes, hours and minutes, then days and hours")
    func durations() {
        #expect(StatusWording.duration(45) == "45s")
        #expect(StatusWording.duration(240) == "4m")
        #expect(StatusWording.duration(3 * 3_600 + 12 * 60) == "3h12m")
        #expect(StatusWording.duration(3 * 86_400 + 5 * 3_600) == "3d5h")
    }
}
