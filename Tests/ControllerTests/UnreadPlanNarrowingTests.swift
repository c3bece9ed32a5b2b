import DesiredState
import Foundation
import Logging
import MeshwardCore
import MeshwardTestKit
import Testing

@testable import Controller

/// `plan --refresh=false` leaves out the channels nothing can change (`RecordedReadings.settled`)
/// and rehearses the rest. Each case compares that plan with the one that rehearses every
/// channel on the same recorded readings: they must be the same document.
@Suite("A plan without the kernels read leaves out only what cannot change")
struct UnreadPlanNarrowingTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func spec(port: String = "tcp/8080", extraNode: Bool = false, withoutDelta: Bool = false) -> FleetIntent {
        var nodes = [
            "  - { name: alpha, addresses: [198.18.11.1], labels: { tier: mesh } }",
            "  - { name: beta, addresses: [198.18.11.2], labels: { tier: mesh } }",
            "  - { name: gamma, addresses: [198.18.11.3], labels: { tier: mesh } }",
        ]
        if !withoutDelta { nodes.append("  - { name: delta, addresses: [198.18.11.4], labels: { tier: mesh } }") }
        if extraNode { nodes.append("  - { name: epsilon, addresses: [198.18.11.5], labels: { tier: mesh } }") }
        let text = """
            version: 1
            cluster: narrow
            defaults: { drain: 5s, cipher: aes-gcm-256, rekey: { every: 2h } }
            nodes:
            \(nodes.joined(separator: "\n"))
            flows:
              - { name: mesh, from: { tier: mesh }, to: { tier: mesh }, ports: [\(port)] }

            """
        let result = SpecLoader().load(sources: [SpecSource(path: "narrow.yaml", text: text)])
        guard let intent = result.intent else { fatalError("test spec invalid: \(result.diagnostics)") }
        return intent
    }

    /// A converged fleet of `spec()` in a fresh state directory, on `clock`.
    static func converged(clock: ManualClock) async throws -> (MeshwardController, URL) {
        let state = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshward-narrow-\(UUID().uuidString)")
        let controller = MeshwardController(stateDirectory: state.path, logger: quiet, clock: clock)
        let applied = try await controller.apply(spec(), source: "narrow.yaml", waitForDrain: true)
        #expect(applied.operations > 0)
        return (controller, state)
    }

    static func expectSamePlans(_ controller: MeshwardController, _ spec: FleetIntent) async throws -> PlanDocument {
        let narrowed = try await PlanRehearsal(context: controller.context).plan(spec, refresh: false)
        var everything = PlanRehearsal(context: controller.context)
        everything.narrowsUnreadPlans = false
        let full = try await everything.plan(spec, refresh: false)
        #expect(narrowed == full)
        #expect(narrowed.kernelsRead == false)
        return narrowed
    }

    @Test("the spec applied, unchanged: no changes either way")
    func unchanged() async throws {
        let (controller, state) = try await Self.converged(clock: ManualClock(Date()))
        defer { try? FileManager.default.removeItem(at: state) }
        let plan = try await Self.expectSamePlans(controller, Self.spec())
        #expect(!plan.changes)
    }

    @Test("a changed port, a node added and a node removed: the same changes either way")
    func specChanges() async throws {
        let (controller, state) = try await Self.converged(clock: ManualClock(Date()))
        defer { try? FileManager.default.removeItem(at: state) }
        let port = try await Self.expectSamePlans(controller, Self.spec(port: "tcp/9090"))
        #expect(port.summary.channelsUpdated == 12)
        let added = try await Self.expectSamePlans(controller, Self.spec(extraNode: true))
        #expect(added.summary.channelsCreated == 8)
        let removed = try await Self.expectSamePlans(controller, Self.spec(withoutDelta: true))
        #expect(removed.summary.channelsRemoved == 6)
    }

    @Test("rekeys due by age, and none yet an hour and a half in: the same either way")
    func rekeyByAge() async throws {
        let clock = ManualClock(Date())
        let (controller, state) = try await Self.converged(clock: clock)
        defer { try? FileManager.default.removeItem(at: state) }
        clock.advance(by: 90 * 60)
        let early = try await Self.expectSamePlans(controller, Self.spec())
        #expect(!early.changes)
        clock.advance(by: 31 * 60)
        let due = try await Self.expectSamePlans(controller, Self.spec())
        #expect(due.summary.channelsRekeyed == 12)
    }

    @Test("a channel left draining by a rekey without waiting: the same either way")
    func channelMidRekey() async throws {
        let clock = ManualClock(Date())
        let (controller, state) = try await Self.converged(clock: clock)
        defer { try? FileManager.default.removeItem(at: state) }
        clock.advance(by: 60)
        let rekeyed = try await controller.apply(
            Self.spec(), source: "narrow.yaml", waitForDrain: false, rekey: .channel(from: "alpha", to: "beta"))
        #expect(rekeyed.generationsIssued.count == 1)
        let records = try await controller.context.openStore().loadChannels()
        let channel = try #require(records[ChannelID(from: "alpha", to: "beta", family: .ipv4)])
        #expect(channel.step == .draining, "\(channel.step)")
        let plan = try await Self.expectSamePlans(controller, Self.spec())
        #expect(plan.changes, "the old inbound SA is still to be deleted after its drain")
    }

    @Test("judged in runs of 1, 2, 3 and 5 channels across threads: the same flags and count as in one run")
    func runsJudgeAsOne() async throws {
        let clock = ManualClock(Date())
        let (controller, state) = try await Self.converged(clock: clock)
        defer { try? FileManager.default.removeItem(at: state) }
        clock.advance(by: 60)
        _ = try await controller.apply(
            Self.spec(), source: "narrow.yaml", waitForDrain: false, rekey: .channel(from: "alpha", to: "beta"))
        let store = try await controller.context.openStore()
        let records = try await store.loadChannels()
        let applied = try #require(try await AppliedSpec.load(from: store))
        // A node added (its channels have no records), a channel draining, one rekey requested.
        let intent = Self.spec(extraNode: true)
        let requests = [ChannelID(from: "gamma", to: "delta", family: .ipv4): clock.now()]
        func judged(run: Int) -> (flags: [Bool], recorded: Int) {
            RecordedReadings.settled(
                records: records, applied: applied, intent: intent, rekeyRequests: requests, now: clock.now(),
                run: run)
        }
        let whole = judged(run: intent.channels.count)
        #expect(whole.recorded == 12)
        #expect(whole.flags.filter { $0 }.count == 10, "\(whole.flags)")
        for run in [1, 2, 3, 5] {
            let parted = judged(run: run)
            #expect(parted.flags == whole.flags, "runs of \(run)")
            #expect(parted.recorded == whole.recorded, "runs of \(run)")
        }
    }
}
