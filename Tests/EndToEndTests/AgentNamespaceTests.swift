import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether this process may build the lab (root, `ip netns add` permitted).
enum AgentLabAccess {
    /// Found once, by the first suite that asks.
    static let probe = Task {
        let probe = "mwag-probe-\(getpid())"
        guard getuid() == 0, (try? await AgentNamespaceTests.Lab.ip(["netns", "add", probe])) != nil else {
            return false
        }
        _ = try? await AgentNamespaceTests.Lab.ip(["netns", "del", probe])
        return true
    }

    static func isPermitted() async -> Bool { await probe.value }
}

/// Agents as separate processes inside network namespaces joined to the root namespace by veth
/// pairs (198.18.0.0/15), the controller in the root namespace dialling them over mutual TLS.
/// The agents serve simulated kernels (this machine's kernel has no ESP), so an agent killed
/// with SIGKILL comes back with an empty kernel, as a host that lost its state does.
@Suite("Agents in network namespaces", .serialized, .enabled { await AgentLabAccess.isPermitted() })
struct AgentNamespaceTests {
    @Test("an agent killed with SIGKILL mid-rekey and restarted empty is restored by the next apply")
    func killedMidRekey() async throws {
        try await Lab.with { lab in
            #expect(try await lab.cli.run(["apply", lab.spec]).status == 0)
            let rekey = try await lab.cli.run(["rekey", lab.spec, "--all", "--no-wait"])
            #expect(rekey.status == 0, "\(rekey.error)")
            await lab.agents[1].kill()
            lab.agents[1] = try await AgentProcess(
                directory: lab.directory(1), listen: "\(lab.nodeAddress(1)):7443", namespace: lab.namespace(1))
            let restored = try await lab.cli.run(["apply", lab.spec])
            #expect(restored.status == 0, "\(restored.error)")
            let plan = try await lab.cli.run(["plan", lab.spec, "--detailed-exitcode"])
            #expect(plan.status == 0, "after the restore: \(plan.output)")
        }
    }

    @Test("a link to an agent cut mid-rekey leaves its node unreachable until it heals, then the fleet converges")
    func linkCutMidRekey() async throws {
        try await Lab.with { lab in
            #expect(try await lab.cli.run(["apply", lab.spec]).status == 0)
            #expect(try await lab.cli.run(["rekey", lab.spec, "--all", "--no-wait"]).status == 0)
            _ = try await Lab.ip(["link", "set", lab.rootInterface(1), "down"])
            let cut = try await lab.cli.run(["apply", lab.spec])
            #expect(cut.status == 1)
            let said = cut.output + cut.error
            #expect(said.contains("b") && said.contains("unreachable") && said.contains("198.18.111.2:7443"), "\(said)")
            _ = try await Lab.ip(["link", "set", lab.rootInterface(1), "up"])
            let healed = try await lab.cli.run(["apply", lab.spec])
            #expect(healed.status == 0, "\(healed.error)")
            let plan = try await lab.cli.run(["plan", lab.spec, "--detailed-exitcode"])
            #expect(plan.status == 0, "after healing: \(plan.output)")
        }
    }

    /// Two namespaces with an agent each, a Store and a spec for them; everything it makes is
    /// removed by `tearDown`.
    final class Lab {

        let tag = String(UInt32.random(in: 0...0xFFFF), radix: 16)
        let cli: MeshwardCLI
        let base: String
        var agents: [AgentProcess] = []
        private(set) var spec = ""
        private var namespaces: [String] = []

        func namespace(_ index: Int) -> String { "mwag-\(tag)-\(index)" }
        func rootInterface(_ index: Int) -> String { "mwr\(tag)\(index)" }
        func nodeAddress(_ index: Int) -> String { "198.18.\(110 + index).2" }
        func directory(_ index: Int) -> String { base + "/agent-\(index)" }

        /// Runs `body` with a new lab, torn down afterwards whatever happens.
        static func with(_ body: (Lab) async throws -> Void) async throws {
            let lab = try await Lab()
            do {
                try await body(lab)
            } catch {
                await lab.tearDown()
                throw error
            }
            await lab.tearDown()
        }

        private init() async throws {
            cli = try MeshwardCLI()
            base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-lab-\(tag)").path
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            do {
                for index in 0..<2 {
                    let namespace = namespace(index)
                    let root = rootInterface(index)
                    let inside = "mwn\(tag)\(index)"
                    _ = try await Self.ip(["netns", "add", namespace])
                    namespaces.append(namespace)
                    _ = try await Self.ip(["link", "add", root, "type", "veth", "peer", "name", inside])
                    _ = try await Self.ip(["link", "set", inside, "netns", namespace])
                    _ = try await Self.ip(["addr", "add", "198.18.\(110 + index).1/24", "dev", root])
                    _ = try await Self.ip(["link", "set", root, "up"])
                    _ = try await Self.ip(["-n", namespace, "addr", "add", "\(nodeAddress(index))/24", "dev", inside])
                    _ = try await Self.ip(["-n", namespace, "link", "set", inside, "up"])
                    _ = try await Self.ip(["-n", namespace, "link", "set", "lo", "up"])
                }
                spec = try MeshwardCLI.writeSpec(
                    """
                    version: 1
                    cluster: lab
                    defaults: { endpoint: agent, drain: 1s }
                    nodes:
                      - { name: a, addresses: [\(nodeAddress(0))] }
                      - { name: b, addresses: [\(nodeAddress(1))] }
                    flows:
                      - { name: ab, from: { name: a }, to: { name: b } }
                    """)
                for index in 0..<2 {
                    let made = try await cli.run([
                        "agent", "credentials", spec, "--node", index == 0 ? "a" : "b", "--out", directory(index),
                    ])
                    guard made.status == 0 else { throw AgentProcessError(message: made.error) }
                    agents.append(
                        try await AgentProcess(
                            directory: directory(index), listen: "\(nodeAddress(index)):7443",
                            namespace: namespace(index)))
                }
            } catch {
                await tearDown()
                throw error
            }
        }

        func tearDown() async {
            for agent in agents { await agent.stop() }
            for index in 0..<2 { _ = try? await Self.ip(["link", "del", rootInterface(index)]) }
            for namespace in namespaces { _ = try? await Self.ip(["netns", "del", namespace]) }
            cli.removeState()
            try? FileManager.default.removeItem(atPath: base)
        }

        /// `ip ARGS...`; throws with its stderr when it fails.
        @discardableResult
        static func ip(_ arguments: [String]) async throws -> String {
            let result = try await MeshwardCLI.capture(URL(fileURLWithPath: "/usr/sbin/ip"), arguments)
            guard result.status == 0 else {
                throw AgentProcessError(message: "ip \(arguments.joined(separator: " ")): \(result.error)")
            }
            return result.output
        }
    }
}
