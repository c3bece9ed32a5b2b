import AgentTestSupport
import Foundation
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import Synchronization
import Testing

@testable import Agent

#if canImport(Glibc)
import Glibc
#endif

/// Policies of node a (198.18.0.1) toward and from node b (198.18.0.2), as the controller writes them.
enum GuardFixtures {
    static let reqid = Reqid.meshwardDefault
    static let toB = PolicySelector(
        source: IPPrefix(host: AgentFixtures.alpha), destination: IPPrefix(host: AgentFixtures.bravo))
    static let fromB = PolicySelector(
        source: IPPrefix(host: AgentFixtures.bravo), destination: IPPrefix(host: AgentFixtures.alpha))

    static func outbound(spi: UInt32? = 0x1000, reqid: Reqid = reqid) -> SecurityPolicy {
        SecurityPolicy(
            selector: toB, direction: .outbound,
            template: PolicyTemplate(family: .ipv4, spi: spi.map { SPI($0) }, reqid: reqid, isOptional: false))
    }

    static func inbound(optional: Bool, reqid: Reqid = reqid) -> SecurityPolicy {
        SecurityPolicy(
            selector: fromB, direction: .inbound,
            template: PolicyTemplate(family: .ipv4, spi: nil, reqid: reqid, isOptional: optional))
    }

    static let entry = BootGuardEntry(
        reqid: reqid, local: IPPrefix(host: AgentFixtures.alpha), peer: IPPrefix(host: AgentFixtures.bravo),
        traffic: .any, priority: SecurityPolicy.defaultPriority)

    static func observation(_ policies: [SecurityPolicy]) -> NodeObservation { NodeObservation(policies: policies) }
}

@Suite("the boot guard list follows the kernel")
struct BootGuardListTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let policies: [SecurityPolicy]
        let previous: [BootGuardEntry]
        let listed: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "an outbound policy whose peer's inbound policy here is required is listed",
            policies: [GuardFixtures.outbound(), GuardFixtures.inbound(optional: false)], previous: [], listed: true),
        Case(
            name: "an outbound policy whose peer's inbound policies here are optional (permissive) is not listed",
            policies: [GuardFixtures.outbound(), GuardFixtures.inbound(optional: true)],
            previous: [GuardFixtures.entry], listed: false),
        Case(
            name: "a guard policy stays listed while the controller has not replaced it",
            policies: [GuardFixtures.outbound(spi: nil)], previous: [GuardFixtures.entry], listed: true),
        Case(
            name: "a selector with no owned outbound policy leaves the list",
            policies: [GuardFixtures.inbound(optional: false)], previous: [GuardFixtures.entry], listed: false),
        Case(
            name: "with no inbound policy from the peer an entry listed before stays listed",
            policies: [GuardFixtures.outbound()], previous: [GuardFixtures.entry], listed: true),
        Case(
            name: "with no inbound policy from the peer an unlisted selector is not added",
            policies: [GuardFixtures.outbound()], previous: [], listed: false),
        Case(
            name: "policies of another reqid are not Meshward's and list nothing",
            policies: [
                GuardFixtures.outbound(reqid: Reqid(7)), GuardFixtures.inbound(optional: false, reqid: Reqid(7)),
            ],
            previous: [], listed: false),
    ]

    @Test(arguments: cases)
    func derive(_ testCase: Case) {
        let derived = BootGuard.derive(
            from: GuardFixtures.observation(testCase.policies), reqid: GuardFixtures.reqid,
            previous: testCase.previous)
        #expect(derived == (testCase.listed ? [GuardFixtures.entry] : []), "\(testCase.name)")
    }

    @Test("entries of another reqid are kept as they were when the kernel of one reqid is read")
    func otherReqidKept() {
        var other = GuardFixtures.entry
        other.reqid = Reqid(0x77)
        let derived = BootGuard.derive(
            from: GuardFixtures.observation([]), reqid: GuardFixtures.reqid, previous: [GuardFixtures.entry, other])
        #expect(derived == [other])
    }

    @Test("the guard policy of an entry is outbound, required, with the entry's reqid and priority and no SPI")
    func guardPolicyShape() {
        var entry = GuardFixtures.entry
        entry.priority = 1_234
        entry.traffic = TrafficMatch(transport: .tcp, destinationPort: 8080)
        let policy = entry.guardPolicy
        #expect(policy.direction == .outbound)
        #expect(policy.selector == PolicySelector(source: entry.local, destination: entry.peer, traffic: entry.traffic))
        #expect(policy.template.spi == nil && !policy.template.isOptional && policy.template.reqid == entry.reqid)
        #expect(policy.priority == 1_234)
        #expect(BootGuard.isGuard(policy))
        #expect(!BootGuard.isGuard(GuardFixtures.outbound()))
    }

    @Test("only listed selectors without an owned outbound policy get a guard")
    func missingGuards() {
        var second = GuardFixtures.entry
        second.traffic = TrafficMatch(transport: .udp, destinationPort: 53)
        let missing = BootGuard.missingGuards(
            [GuardFixtures.entry, second], reqid: GuardFixtures.reqid,
            observation: GuardFixtures.observation([GuardFixtures.outbound()]))
        #expect(missing == [second.guardPolicy])
    }
}

@Suite("the boot guard keeper")
struct BootGuardKeeperTests {
    @Test("a kernel read that started before the last one applied does not overwrite the list")
    func olderReadIgnored() throws {
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        let keeper = try BootGuardKeeper(
            node: "a", directory: directory, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let older = keeper.ticket()
        let newer = keeper.ticket()
        let enforced = GuardFixtures.observation([GuardFixtures.outbound(), GuardFixtures.inbound(optional: false)])
        keeper.follow(enforced, reqid: GuardFixtures.reqid, ticket: newer)
        keeper.follow(GuardFixtures.observation([]), reqid: GuardFixtures.reqid, ticket: older)
        #expect(keeper.entries == [GuardFixtures.entry])
        #expect(try directory.readBootGuard() == [GuardFixtures.entry])
        keeper.follow(GuardFixtures.observation([]), reqid: GuardFixtures.reqid, ticket: keeper.ticket())
        #expect(keeper.entries == [])
        #expect(try directory.readBootGuard() == [])
    }
}

@Suite("the agent's boot guard")
struct BootGuardAgentTests {
    /// Node a's channel to b as the controller leaves it: outbound SA and policy, and the
    /// required inbound policy of b's channel to a.
    /// A fleet whose node a converged behind an agent with its own directory, then stopped.
    static func convergedAndStopped() async throws -> (SimulatedFleet, AgentDirectory, InProcessAgents) {
        let fleet = AgentFixtures.fleet()
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), directories: ["a": directory])
        try await converge(agents)
        await agents.stop()
        return (fleet, directory, agents)
    }

    static func converge(_ agents: InProcessAgents) async throws {
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        let results = try await agents.kernel("a").apply([
            .addSA(sa), .addPolicy(GuardFixtures.outbound()), .addPolicy(GuardFixtures.inbound(optional: false)),
        ])
        #expect(results.map(\.outcome) == [.applied, .applied, .applied])
    }

    @Test("after an apply the agent writes boot-guard.json, 0600, with the enforced selector and no SPI or key")
    func listWrittenAfterApply() async throws {
        let (fleet, directory, _) = try await Self.convergedAndStopped()
        #expect(try directory.readBootGuard() == [GuardFixtures.entry])
        var status = stat()
        #expect(stat(directory.bootGuardPath, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: directory.bootGuardPath, encoding: .utf8)
        let fingerprint = try #require(fleet.state.nodes["a"]?.securityAssociations.first?.key.fingerprint)
        #expect(!text.lowercased().contains("spi") && !text.contains("0x1000") && !text.contains("4096"), "\(text)")
        #expect(!text.contains(fingerprint) && !text.lowercased().contains("key"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: directory.bootGuardPath + ".tmp"))
    }

    @Test(
        "after an apply of SA operations alone the agent does not read its kernel again; after one that changes a policy it does, once"
    )
    func kernelReadOnlyAfterPolicyChanges() async throws {
        let fleet = AgentFixtures.fleet()
        let counting = ObservationCount()
        let agents = try await InProcessAgents.start(nodes: ["a"], connector: counting.connector(fleet))
        try await Self.converge(agents)
        let afterConverge = counting.value
        #expect(afterConverge == 1, "the converging batch adds policies: one read after it")

        let next = AgentFixtures.association(spi: 0x1001, key: try AgentFixtures.key())
        let saOnly = try await agents.kernel("a").apply([.addSA(next)])
        #expect(saOnly.map(\.outcome) == [.applied])
        #expect(counting.value == afterConverge)

        let repinned = try await agents.kernel("a").apply([.updatePolicy(GuardFixtures.outbound(spi: 0x1001))])
        #expect(repinned.map(\.outcome) == [.applied])
        #expect(counting.value == afterConverge + 1)
        await agents.stop()
    }

    @Test(
        "an agent restarted on a wiped kernel installs the guard before it listens: packets to the peer are dropped, never plaintext"
    )
    func guardInstalledAtStart() async throws {
        let (fleet, directory, first) = try await Self.convergedAndStopped()
        fleet.wipe(node: "a")
        // Without the guard the wiped host would send in plaintext.
        #expect(fleet.send(from: "a", to: AgentFixtures.bravo) == .deliveredPlaintext)
        let restarted = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), ca: first.ca, directories: ["a": directory])
        // `start` returns once the agent listens: the guard is in the kernel by then.
        let policies = try fleet.withState { try $0.observe(node: "a", reqid: .meshwardDefault) }.policies
        #expect(policies == [GuardFixtures.entry.guardPolicy])
        #expect(fleet.send(from: "a", to: AgentFixtures.bravo) == .dropped(.outNoStates))
        #expect(fleet.state.nodes["a"]?.statistics["XfrmOutNoStates"] == 1)
        // A controller's observation keeps the guard listed.
        _ = try await restarted.kernel("a").observe(deadline: .now + .seconds(30))
        #expect(restarted.servers["a"]?.bootGuardEntries == [GuardFixtures.entry])
        await restarted.stop()
        #expect(try directory.readBootGuard() == [GuardFixtures.entry])
    }

    @Test("an agent restarted on a kernel that kept its policies installs no guard")
    func nothingInstalledWhenPoliciesStayed() async throws {
        let (fleet, directory, first) = try await Self.convergedAndStopped()
        let before = fleet.state
        let restarted = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), ca: first.ca, directories: ["a": directory])
        await restarted.stop()
        #expect(fleet.state == before)
    }

    @Test("a malformed boot-guard.json stops the agent with a message naming the file, and nothing is installed")
    func malformedListRefused() async throws {
        let fleet = AgentFixtures.fleet()
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        let descriptor = open(directory.bootGuardPath, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(descriptor >= 0)
        let text = Array(#"{"version": 1, "entries": [{"reqid": 19799}]}"#.utf8)
        _ = text.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        let message = await AgentFixtures.errorText {
            let agents = try await InProcessAgents.start(
                nodes: ["a"], connector: SimulatedConnector(fleet: fleet), directories: ["a": directory])
            await agents.stop()
        }
        #expect(message.contains(directory.bootGuardPath) && message.contains("is not a boot guard list"), "\(message)")
        #expect(message.contains("missing 'local' at entries.0"), "\(message)")
        #expect(fleet.state.nodes["a"]?.policies.isEmpty == true)
    }
}

/// Counts the observations made of a simulated fleet's kernels.
final class ObservationCount: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }

    /// A connector to `fleet` whose every observation is counted here.
    func connector(_ fleet: SimulatedFleet) -> InterceptingConnector {
        InterceptingConnector(
            fleet: fleet,
            observe: { kernel, deadline in
                self.count.withLock { $0 += 1 }
                return try await kernel.observe(deadline: deadline)
            })
    }
}
