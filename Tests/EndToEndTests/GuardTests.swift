import Controller
import Foundation
import Kernel
import KernelSimulator
import MeshwardCommands
import MeshwardCore
import MeshwardTestSupport
import Reconciler
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The guards of `plan` and `apply` (terraform's and kubectl's habits): a saved plan applies
/// exactly or not at all, another cluster's spec is refused, a mass removal needs --force, a
/// terminal is asked before anything changes, and --target keeps a run to part of the fleet.
@Suite("Guards", .serialized)
struct GuardTests {
    /// Three nodes, four channels: alpha<->beta and beta<->delta.
    static let fleet = """
        version: 1
        cluster: guards
        defaults: { drain: 1s }
        nodes:
          - { name: alpha, addresses: [198.18.7.1] }
          - { name: beta, addresses: [198.18.7.2] }
          - { name: delta, addresses: [198.18.7.3] }
        flows:
          - { name: ab, from: { name: alpha }, to: { name: beta } }
          - { name: bd, from: { name: beta }, to: { name: delta } }

        """

    static func spec(_ text: String = fleet) throws -> String { try MeshwardCLI.writeSpec(text) }

    /// The fleet without the beta-delta flow: two of the four channels go (exactly half).
    static let withoutBD = fleet.replacingOccurrences(
        of: "  - { name: bd, from: { name: beta }, to: { name: delta } }\n", with: "")
    /// The fleet with no flow: every channel goes.
    static let noFlows = withoutBD.replacingOccurrences(
        of: "flows:\n  - { name: ab, from: { name: alpha }, to: { name: beta } }\n", with: "flows: []\n")

    static func channels(_ cli: MeshwardCLI) async throws -> [[String: Any]] {
        try await cli.json("status").1["channels"] as? [[String: Any]] ?? []
    }

    static func planFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("meshward-saved-\(UUID()).json").path
    }

    // MARK: - Cluster

    @Test("apply and plan refuse a spec of another cluster than the Store's, naming both, and change nothing")
    func otherClusterIsRefused() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        let other = try Self.spec(Self.fleet.replacingOccurrences(of: "cluster: guards", with: "cluster: shop"))
        for command in ["apply", "plan"] {
            let result = try await cli.run(command, other)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(
                result.error.contains("the spec is for cluster 'shop', but the Store")
                    && result.error.contains("belongs to cluster 'guards'"), "\(command): \(result.error)")
        }
        let (status, document) = try await cli.json("apply", other)
        #expect(status == 1)
        #expect(((document["error"] as? [String: Any])?["message"] as? String)?.contains("'guards'") == true)
        #expect(try await cli.json("history").1["revisions"].map { ($0 as? [Any])?.count } == 1, "no revision recorded")
        #expect(try await Self.channels(cli).count == 4)
    }

    // MARK: - Mass removal

    @Test("apply refuses to remove more than half of the channels without --force, and removes them with it")
    func massRemovalNeedsForce() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        let empty = try Self.spec(Self.noFlows)

        let refused = try await cli.run("apply", empty)
        #expect(refused.status == 1)
        #expect(
            refused.error.contains("this spec removes 4 of the 4 channels the Store holds (more than half)")
                && refused.error.contains("pass --force"), "\(refused.error)")
        #expect(try await Self.channels(cli).count == 4, "nothing was removed")

        let plan = try await cli.run("plan", empty)
        #expect(plan.error.contains("apply refuses it without --force"), "plan warns: \(plan.error)")

        #expect(try await cli.run("apply", empty, "--force").status == 0)
        #expect(try await Self.channels(cli).isEmpty)
    }

    @Test("removing exactly half of the channels needs no --force")
    func removingHalfIsAllowed() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        let result = try await cli.run("apply", try Self.spec(Self.withoutBD))
        #expect(result.status == 0, "\(result.error)")
        #expect(try await Self.channels(cli).count == 2)
    }

    @Test(
        "rekey and reconcile --once refuse a mass removal without --force; a removal under way needs no second --force")
    func rekeyAndReconcileRefuseMassRemoval() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        // beta-delta goes (2 of 4): allowed; then with no flow left, 2 of 2 would go: refused.
        #expect(try await cli.run("apply", try Self.spec(Self.withoutBD)).status == 0)
        let empty = try Self.spec(Self.noFlows)
        let rekey = try await cli.run("rekey", empty, "--all")
        #expect(rekey.status == 1)
        #expect(rekey.error.contains("more than half"), "\(rekey.error)")
        let reconcile = try await cli.run("reconcile", empty, "--once")
        #expect(reconcile.status == 1)
        #expect(reconcile.error.contains("more than half"), "\(reconcile.error)")
        #expect(try await Self.channels(cli).count == 2, "nothing was removed")
        // One cycle does not wait for drains: what is left is being removed, and finishing a
        // removal that --force allowed needs no --force again.
        #expect(try await cli.run("reconcile", empty, "--once", "--force").status == 0)
        let removing = try await Self.channels(cli)
        #expect(!removing.isEmpty && removing.allSatisfy { $0["step"] as? String == "removing" }, "\(removing)")
        let finish = try await cli.run("apply", empty)
        #expect(finish.status == 0, "\(finish.error)")
        #expect(try await Self.channels(cli).isEmpty)
    }

    // MARK: - Saved plans

    @Test("plan --out writes a 0600 file with the revision, the spec and both fingerprints; apply FILE applies it")
    func savedPlanApplies() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let file = Self.planFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let spec = try Self.spec()
        let planned = try await cli.run("plan", spec, "--out", file)
        #expect(planned.status == 0, "\(planned.error)")
        #expect(planned.output.contains("Saved the plan to \(file)"), "\(planned.output)")

        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let saved =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any]
        #expect(saved?["kind"] as? String == "meshward-saved-plan")
        #expect(saved?["format_version"] as? Int == 1)
        let plan = saved?["plan"] as? [String: Any]
        #expect((plan?["revision"] as? String)?.count == 64)
        #expect((plan?["state_fingerprint"] as? String)?.count == 64)
        #expect((plan?["fleet_fingerprint"] as? String)?.count == 64)
        #expect((saved?["spec_files"] as? [[String: Any]])?.first?["text"] as? String == Self.fleet)

        try FileManager.default.removeItem(atPath: spec)  // the plan carries the spec itself
        let (status, document) = try await cli.json("apply", file)
        #expect(status == 0, "\(document)")
        #expect(document["outcome"] as? String == "converged")
        #expect(document["revision"] as? String == plan?["revision"] as? String)
        #expect(try await Self.channels(cli).count == 4)
    }

    @Test("apply FILE refuses with exit 1 when the Store moved on since the plan was made, and changes nothing")
    func savedPlanRefusedAfterStoreMoved() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let file = Self.planFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        #expect(try await cli.run("plan", try Self.spec(Self.withoutBD), "--out", file).status == 0)
        #expect(try await cli.run("rekey", try Self.spec(), "--all").status == 0)

        let refused = try await cli.run("apply", file)
        #expect(refused.status == 1)
        #expect(
            refused.error.contains("the saved plan \(file) is out of date, nothing was changed")
                && refused.error.contains("the Store changed since the plan was made"), "\(refused.error)")
        #expect(try await Self.channels(cli).count == 4, "the plan's removal did not happen")
    }

    @Test("apply FILE refuses when a kernel moved on since the plan was made")
    func savedPlanRefusedAfterKernelMoved() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let file = Self.planFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        #expect(try await cli.run("plan", try Self.spec(), "--out", file).status == 0)

        // Someone flushes delta's kernel (ip xfrm state flush) after the plan was made.
        let fleetFile = cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite")
        let fleet = try SimulatedFleet.load(from: fleetFile)
        fleet.wipe(node: "delta")
        try fleet.save(to: fleetFile)

        let refused = try await cli.run("apply", file)
        #expect(refused.status == 1)
        #expect(refused.error.contains("the kernels changed since the plan was made"), "\(refused.error)")
    }

    @Test("a saved plan that is not this format version, or whose spec was edited, is refused")
    func savedPlanFormatChecked() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let file = Self.planFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try await cli.run("plan", try Self.spec(), "--out", file).status == 0)
        let text = try String(contentsOfFile: file, encoding: .utf8)

        try text.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 9")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let version = try await cli.run("apply", file)
        #expect(version.status == 1)
        #expect(version.error.contains("format_version 9; this Meshward reads version 1"), "\(version.error)")

        try text.replacingOccurrences(of: "198.18.7.3", with: "198.18.7.9")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let edited = try await cli.run("apply", file)
        #expect(edited.status == 1)
        #expect(edited.error.contains("not the plan's"), "\(edited.error)")
        #expect(try await cli.run("status").status == 1, "nothing was applied: no state yet")
    }

    // MARK: - Confirmation

    @Test(
        "apply asks only when standard input and output are terminals, the output is text, without --yes or a saved plan",
        arguments: [
            (true, true, false, false, false, true),
            (false, true, false, false, false, false),
            (true, false, false, false, false, false),
            (true, true, true, false, false, false),
            (true, true, false, true, false, false),
            (true, true, false, false, true, false),
        ])
    func confirmationDecision(
        input: Bool, output: Bool, yes: Bool, json: Bool, saved: Bool, asks: Bool
    ) {
        #expect(
            ApplyConfirmation.shouldAsk(
                standardInputIsTerminal: input, standardOutputIsTerminal: output, yes: yes, jsonOutput: json,
                savedPlan: saved) == asks)
    }

    @Test("only yes or y confirms; an empty line or the end of input is no")
    func confirmationAnswers() {
        for answer in ["yes", "y", " YES ", "Y"] { #expect(ApplyConfirmation.accepts(answer), "\(answer)") }
        for answer in ["", "no", "n", "yess", "ok"] { #expect(!ApplyConfirmation.accepts(answer), "\(answer)") }
        #expect(!ApplyConfirmation.accepts(nil))
    }

    @Test("off a terminal apply never asks: 'no' on standard input changes nothing, the plan is applied")
    func noQuestionOffATerminal() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let answers = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-no-\(UUID())")
        try Data("no\n".utf8).write(to: answers)
        defer { try? FileManager.default.removeItem(at: answers) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", "exec \"$0\" apply \"$1\" --state-dir \"$2\" < \"$3\" > /dev/null 2>&1", MeshwardCLI.binary.path,
            try Self.spec(), cli.stateDirectory.path, answers.path,
        ]
        #expect(try await ProcessExit(launching: process).status() == 0)
        #expect(try await Self.channels(cli).count == 4, "applied without a question")
    }

    @Test("the drain countdown shows only on a terminal with text output while apply waits, in whole seconds")
    func drainCountdown() {
        #expect(DrainCountdown.shouldShow(standardErrorIsTerminal: true, jsonOutput: false, waitingForDrain: true))
        #expect(!DrainCountdown.shouldShow(standardErrorIsTerminal: false, jsonOutput: false, waitingForDrain: true))
        #expect(!DrainCountdown.shouldShow(standardErrorIsTerminal: true, jsonOutput: true, waitingForDrain: true))
        #expect(!DrainCountdown.shouldShow(standardErrorIsTerminal: true, jsonOutput: false, waitingForDrain: false))
        #expect(DrainCountdown.line(secondsLeft: 3.2) == "waiting for drain: old inbound SAs go in 4s")
        #expect(DrainCountdown.line(secondsLeft: -1) == "waiting for drain: old inbound SAs go in 0s")
        #expect(DrainCountdown.line(secondsLeft: 300) == "waiting for drain: old inbound SAs go in 5m")
    }

    // MARK: - Target

    @Test("apply --target NODE changes only the channels to or from that node")
    func targetNode() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        let generations = { () async throws -> [String: Int] in
            Dictionary(
                try await Self.channels(cli).map { ($0["channel"] as? String ?? "", $0["generation"] as? Int ?? 0) },
                uniquingKeysWith: { first, _ in first })
        }
        let before = try await generations()
        // A cipher change rekeys every channel; --target alpha only alpha's two.
        let chacha = try Self.spec(
            Self.fleet.replacingOccurrences(of: "drain: 1s", with: "drain: 1s, cipher: chacha20-poly1305"))
        let (status, document) = try await cli.json("apply", chacha, "--target", "alpha")
        #expect(status == 0, "\(document)")
        let after = try await generations()
        for (channel, generation) in after {
            let touchesAlpha = channel.hasPrefix("alpha->") || channel.contains("->alpha/")
            #expect(generation == (before[channel] ?? 0) + (touchesAlpha ? 1 : 0), "\(channel)")
        }
        let history = try await cli.json("history").1["revisions"] as? [[String: Any]] ?? []
        #expect(history.first?["command"] as? String == "apply --target alpha")

        // The rest is still pending, and the recorded revision is the old one.
        let plan = try await cli.json("plan", chacha, "--detailed-exitcode")
        #expect(plan.0 == 2)
        #expect(plan.1["revision_changed"] as? Bool == true)
        #expect((plan.1["summary"] as? [String: Any])?["channels_rekeyed"] as? Int == 2, "beta<->delta remain")
    }

    @Test("apply --target FROM:TO removes only that channel's objects; another channel's stale objects stay")
    func targetChannelLeavesOthersAlone() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        // A stale object of another channel: a copy of delta's inbound SA from beta, under an
        // SPI no record knows.
        let fleetFile = cli.stateDirectory.appendingPathComponent("simulated-fleet.sqlite")
        let fleet = try SimulatedFleet.load(from: fleetFile)
        try fleet.withState { state in
            let observed = try state.observe(node: "delta", reqid: .meshwardDefault)
            var stale = try #require(observed.securityAssociations.first { $0.destination.description == "198.18.7.3" })
            stale.spi = SPI(0x7777)
            _ = state.apply(.addSA(stale), on: "delta")
        }
        try fleet.save(to: fleetFile)

        let empty = try Self.spec(Self.noFlows)
        let result = try await cli.run("apply", empty, "--target", "alpha:beta")
        #expect(result.status == 0, "\(result.error)")
        let left = try await Self.channels(cli).compactMap { $0["channel"] as? String }.sorted()
        #expect(left == ["beta->alpha/ipv4", "beta->delta/ipv4", "delta->beta/ipv4"], "\(left)")
        let status = try await cli.json("status").1
        let nodes = status["nodes"] as? [[String: Any]] ?? []
        let delta = nodes.first { $0["name"] as? String == "delta" }
        #expect(delta?["security_associations"] as? Int == 3, "delta's objects, the stale one too, stay: \(nodes)")

        // Untargeted, the same kind of run removes the stale SA (so the check above can fail).
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        let after = (try await cli.json("status").1["nodes"] as? [[String: Any]] ?? []).first {
            $0["name"] as? String == "delta"
        }
        #expect(after?["security_associations"] as? Int == 2, "\(String(describing: after))")

        let unknown = try await cli.run("apply", empty, "--target", "alpha:delta")
        #expect(unknown.status == 1)
        #expect(unknown.error.contains("no channel from alpha to delta"), "\(unknown.error)")
    }

    @Test("plan --target --out saves the target; apply FILE applies only it, and refuses another --target beside it")
    func savedPlanKeepsItsTarget() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let file = Self.planFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        #expect(try await cli.run("apply", try Self.spec()).status == 0)
        let chacha = try Self.spec(
            Self.fleet.replacingOccurrences(of: "drain: 1s", with: "drain: 1s, cipher: chacha20-poly1305"))
        let (planned, plan) = try await cli.json("plan", chacha, "--target", "beta:delta", "--out", file)
        #expect(planned == 0)
        #expect(plan["target"] as? String == "beta:delta")
        #expect((plan["summary"] as? [String: Any])?["channels_rekeyed"] as? Int == 1)

        let beside = try await cli.run("apply", file, "--target", "alpha")
        #expect(beside.status == 1)
        #expect(beside.error.contains("a saved plan keeps its own target"), "\(beside.error)")

        #expect(try await cli.run("apply", file).status == 0)
        let ciphers = Dictionary(
            try await Self.channels(cli).map { ($0["channel"] as? String ?? "", $0["cipher"] as? String ?? "") },
            uniquingKeysWith: { first, _ in first })
        #expect(ciphers["beta->delta/ipv4"] == "chacha20-poly1305", "\(ciphers)")
        #expect(ciphers.filter { $0.key != "beta->delta/ipv4" }.values.allSatisfy { $0 == "aes-gcm-256" }, "\(ciphers)")
    }

    @Test("a malformed --target is a usage error that exits 1")
    func malformedTarget() async throws {
        let cli = try MeshwardCLI()
        defer { cli.removeState() }
        let result = try await cli.run("apply", try Self.spec(), "--target", "alpha:")
        #expect(result.status == 1)
        #expect(result.error.contains("--target takes a node name or FROM:TO"), "\(result.error)")
    }
}
