import DesiredState
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Reconciler
@testable import ReconcilerTestSupport

/// Kernels that refuse an operation or stop answering in the middle of a batch, at seeded random
/// points: no step runs ahead of an unconfirmed one (continuity is checked after every
/// operation of every interleaving), the fault holds back only what depends on it, the
/// reconciler backs off on its clock before retrying, and the fleet converges once the fault
/// clears. The seed is printed; `MESHWARD_TEST_SEED=N` replays one.
@Suite("Kernel faults")
struct KernelFaultTests {
    /// One errno a kernel may answer with, named for the table.
    struct Fault: CustomTestStringConvertible, Sendable {
        let name: String
        let errno: Int32
        var testDescription: String { name }
    }

    static let faults = [
        Fault(name: "EEXIST", errno: EEXIST), Fault(name: "ENOENT", errno: ENOENT), Fault(name: "ESRCH", errno: ESRCH),
        Fault(name: "ENOBUFS", errno: ENOBUFS), Fault(name: "EPERM", errno: EPERM),
        Fault(name: "EINVAL", errno: EINVAL),
    ]

    /// What the fleet is doing when the fault strikes.
    enum Phase: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Building every channel from an empty fleet.
        case creation
        /// Rotating every channel of a converged fleet on request.
        case rekey

        var testDescription: String { rawValue }
    }

    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["MESHWARD_TEST_SEED"].flatMap { UInt64($0) } ?? 0x5EED_FA17
    }

    static let spec = FleetSpec.threeTier

    @Test(
        "a refused operation holds back only its own channel, and the run converges", arguments: faults, Phase.allCases)
    func refusedOperation(fault: Fault, phase: Phase) async throws {
        let seed = Self.seed ^ UInt64(fault.errno) << 8 ^ (phase == .rekey ? 1 : 0)
        var random = SeededRandom(seed: seed)
        let intent = try Self.spec.compile()
        let baseline = try await PhaseRun.start(phase, intent: intent, seed: seed)
        let clean = try await baseline.finish()
        let (node, nth) = try clean.randomOperation(&random)
        print("refused operation: seed \(seed), \(fault.name) on operation \(nth) of \(node) during \(phase)")

        let faulty = try await PhaseRun.start(phase, intent: intent, seed: seed)
        faulty.harness.fleet.failOperation(on: node, nth: nth, errno: fault.errno)
        let outcome = try await faulty.finish()

        let failures = outcome.failures
        try #require(failures.count == 1, "the fault did not strike once: \(failures)")
        guard case .failed(let errno, _) = failures[0].outcome else {
            Issue.record("the failure is \(failures[0].outcome)")
            return
        }
        #expect(errno == fault.errno)
        #expect(faulty.harness.violations == [], "continuity broke around the refused operation")
        try faulty.harness.assertConverged(intent)

        // Every other channel reaches its milestone in the same pass as without the fault.
        let held = failures[0].planned.channel
        for channel in intent.channels.map(\.id) {
            let expected = try #require(clean.milestones[channel], "\(channel) never reached its milestone")
            let reached = try #require(outcome.milestones[channel], "\(channel) never reached its milestone")
            if channel == held {
                #expect(reached >= expected, "\(channel) went ahead of its refused operation")
            } else {
                #expect(reached == expected, "\(channel) was disturbed: pass \(reached), not \(expected)")
            }
        }
    }

    @Test("the reconciler backs off on its clock before retrying a refused operation", arguments: faults)
    func backsOff(fault: Fault) async throws {
        let seed = Self.seed ^ UInt64(fault.errno) << 16
        var random = SeededRandom(seed: seed)
        let intent = try Self.spec.compile()
        let clean = try await PhaseRun.start(.creation, intent: intent, seed: seed).finish()
        let (node, nth) = try clean.randomOperation(&random)
        print("back-off: seed \(seed), \(fault.name) on operation \(nth) of \(node)")

        let harness = ContinuityHarness(seed: seed)
        harness.provision(intent)
        harness.fleet.failOperation(on: node, nth: nth, errno: fault.errno)
        let started = harness.clock.now()
        let report = try await harness.reconciler.converge(intent: intent, waitForDrain: true)
        #expect(report.outcome == .converged)
        let failing = report.passes.filter { !$0.failures.isEmpty }
        #expect(failing.count == 1)
        // Creating channels waits for no drain: all the time that passed is the back-off.
        let waited = harness.clock.now().timeIntervalSince(started)
        #expect(abs(waited - 0.2) < 1e-6, "the clock moved \(waited) s, not the first back-off of 0.2 s")
        harness.records = try harness.store.loadChannels()
        try harness.assertConverged(intent)
    }

    @Test("a fault that persists stops the run after four failing passes with growing back-off, then clears")
    func persistentFault() async throws {
        let intent = try Self.spec.compile()
        let harness = ContinuityHarness(seed: Self.seed)
        harness.provision(intent)
        for nth in 1...500 { harness.fleet.failOperation(on: "n3", nth: nth, errno: ENOBUFS) }
        let started = harness.clock.now()
        do {
            _ = try await harness.reconciler.converge(intent: intent, waitForDrain: true)
            Issue.record("converged although n3 refuses everything")
        } catch let error as ReconcileError {
            #expect("\(error)".contains("n3"), "\(error)")
        }
        let waited = harness.clock.now().timeIntervalSince(started)
        #expect(abs(waited - (0.2 + 0.4 + 0.8)) < 1e-6, "back-off slept \(waited) s, not 0.2 + 0.4 + 0.8")
        // Channels that do not touch n3 were built meanwhile: they encrypt with their generation.
        let records = try harness.store.loadChannels()
        let elsewhere = intent.channels.filter { $0.id.from != "n3" && $0.id.to != "n3" }
        #expect(!elsewhere.isEmpty)
        for channel in elsewhere {
            let traffic = channel.traffic.first ?? .any
            let outcome = harness.fleet.send(
                from: channel.id.from, to: channel.destination, transport: traffic.transport ?? .udp,
                sourcePort: traffic.sourcePort ?? 40_000, destinationPort: traffic.destinationPort ?? 4_000)
            let active = records[channel.id]?.generations.last { $0.state == .active }
            #expect(active.map { outcome == .deliveredEncrypted(spi: $0.spi) } == true, "\(channel.id): \(outcome)")
        }

        harness.fleet.clearFaults(on: "n3")
        let report = try await harness.reconciler.converge(intent: intent, waitForDrain: true)
        #expect(report.outcome == .converged)
        harness.records = try harness.store.loadChannels()
        try harness.assertConverged(intent)
    }

    @Test(
        "a node that stops answering mid-batch blocks only its channels; they finish once it answers",
        arguments: Phase.allCases)
    func stopsAnswering(phase: Phase) async throws {
        let seed = Self.seed ^ 0xA5A5 ^ (phase == .rekey ? 1 : 0)
        var random = SeededRandom(seed: seed)
        let intent = try Self.spec.compile()
        let clean = try await PhaseRun.start(phase, intent: intent, seed: seed).finish()
        // A node and a point strictly inside its first batch.
        let batches = clean.firstBatches.filter { $0.value >= 2 }.sorted { $0.key < $1.key }
        let (node, size) = try #require(batches.randomElement(using: &random))
        let answered = Int(random.next() % UInt64(size - 1)) + 1
        print("stops answering: seed \(seed), \(node) after \(answered) of \(size) operations during \(phase)")

        let faulty = try await PhaseRun.start(phase, intent: intent, seed: seed)
        faulty.harness.fleet.stopAnswering(on: node, afterOperations: answered)
        do {
            _ = try await faulty.finish()
            Issue.record("converged although \(node) stopped answering")
        } catch let error as HarnessError {
            #expect(error.message.hasPrefix("blocked"), "\(error)")
        }
        #expect(faulty.harness.violations == [], "continuity broke while \(node) did not answer")
        let records = faulty.harness.records
        for channel in intent.channels.map(\.id) {
            let touches = channel.from == node || channel.to == node
            if touches {
                #expect(
                    records[channel]?.step == .blocked,
                    "\(channel) is \(records[channel].map { $0.step.rawValue } ?? "-")")
            } else {
                #expect(faulty.milestones[channel] == clean.milestones[channel], "\(channel) was disturbed")
            }
        }

        faulty.harness.fleet.setReachable(node, true)
        try await faulty.harness.converge(intent, rekeyRequests: faulty.requests)
        #expect(faulty.harness.violations == [])
        try faulty.harness.assertConverged(intent)
        if phase == .rekey {
            for channel in intent.channels.map(\.id) {
                let active = faulty.harness.records[channel]?.generations.last { $0.state == .active }
                #expect(active?.number == 2, "\(channel) was not rotated")
            }
        }
    }
}

/// One phase of the three-node fleet run through the harness, recording when each channel
/// reached its milestone (established when creating; switched to its new generation when
/// rekeying), every operation each node received, and each node's first batch.
final class PhaseRun {
    let harness: ContinuityHarness
    let intent: FleetIntent
    let phase: KernelFaultTests.Phase
    let requests: [ChannelID: Date]
    private(set) var milestones: [ChannelID: Int] = [:]
    private(set) var operations: [String: Int] = [:]
    private(set) var firstBatches: [String: Int] = [:]
    private(set) var failures: [(planned: PlannedOperation, outcome: OperationOutcome)] = []

    private init(
        harness: ContinuityHarness, intent: FleetIntent, phase: KernelFaultTests.Phase,
        requests: [ChannelID: Date]
    ) {
        self.harness = harness
        self.intent = intent
        self.phase = phase
        self.requests = requests
    }

    /// A harness brought to where the phase starts: empty, or converged and asked to rekey.
    static func start(_ phase: KernelFaultTests.Phase, intent: FleetIntent, seed: UInt64) async throws -> PhaseRun {
        let harness = ContinuityHarness(seed: seed)
        var requests: [ChannelID: Date] = [:]
        harness.provision(intent)
        if phase == .rekey {
            try await harness.converge(intent)
            harness.clock.advance(by: 1)
            requests = Dictionary(uniqueKeysWithValues: harness.records.keys.map { ($0, harness.clock.now()) })
        }
        return PhaseRun(harness: harness, intent: intent, phase: phase, requests: requests)
    }

    /// Converges, recording as it goes; returns itself for chaining.
    @discardableResult
    func finish() async throws -> PhaseRun {
        var pass = 0
        try await harness.converge(intent, rekeyRequests: requests) { report in
            pass += 1
            self.note(report, pass: pass)
        }
        return self
    }

    private func note(_ report: PassReport, pass: Int) {
        for (planned, outcome) in report.results {
            operations[planned.node, default: 0] += 1
            if !outcome.isApplied { failures.append((planned, outcome)) }
        }
        for (node, batch) in report.plan.operations where firstBatches[node] == nil {
            firstBatches[node] = batch.count
        }
        for channel in intent.channels.map(\.id) where milestones[channel] == nil {
            guard let record = harness.records[channel] else { continue }
            switch phase {
            case .creation:
                if record.step == .established { milestones[channel] = pass }
            case .rekey:
                if record.generations.contains(where: { $0.state == .active && $0.number > 1 }) {
                    milestones[channel] = pass
                }
            }
        }
    }

    /// A node that received operations, and one of them (1-based), drawn from `random`.
    func randomOperation(_ random: inout SeededRandom) throws -> (node: String, nth: Int) {
        let nodes = operations.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        guard let (node, count) = nodes.randomElement(using: &random) else {
            throw HarnessError(message: "the run sent no operation")
        }
        return (node, Int(random.next() % UInt64(count)) + 1)
    }
}
