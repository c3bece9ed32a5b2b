import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The control connection never depends on the SAs it manages (design.md §10): the controller's
/// host is a node (`endpoint: local`), and between it and an agent's host both kernels hold
/// policies that demand ESP for every packet, with no SA to give it — the state a controller
/// host keeps toward a peer that lost its SAs. This kernel has no ESP, so no SA could exist:
/// everything not exempt from IPsec is dropped, and only the bypass on the control sockets can
/// carry the connection.
@Suite("The control connection is exempt from IPsec", .serialized, .enabled { await AgentLabAccess.isPermitted() })
struct ControlSocketBypassTests {
    @Test(
        "with ESP demanded both ways and no SA, a plain TCP connect to the agent's port fails; the controller, itself a node, still observes the agent and moves no drop counter"
    )
    func controlConnectionBypassesPolicies() async throws {
        try await Lab.with(prefix: "mwb", subnet: 121, cluster: "bypass") { lab in
            let (controllerHost, agentHost) = (lab.controllerHost, lab.agentHost)
            let (controllerAddress, agentAddress) = (lab.controllerAddress, lab.agentAddress)
            let (cli, spec, directory) = (lab.cli, lab.spec, lab.directory)
            lab.agent = try await AgentProcess(
                directory: directory, listen: "\(agentAddress):7443", namespace: agentHost)

            let connect = ": > /dev/tcp/\(agentAddress)/7443"
            let open = try await inNamespace(
                controllerHost, "/usr/bin/timeout", ["--signal=KILL", "3", "/bin/bash", "-c", connect])
            try #require(open.status == 0, "before any policy the agent's port must be reachable: \(open.error)")

            try await Self.demandESP(controllerHost, controllerAddress, agentHost, agentAddress)
            let blocked = try await inNamespace(
                controllerHost, "/usr/bin/timeout", ["--signal=KILL", "3", "/bin/bash", "-c", connect])
            #expect(blocked.status != 0, "a socket without the bypass must not get through the policies")

            let before = [try await xfrmCounters(controllerHost), try await xfrmCounters(agentHost)]
            let plan = try await inNamespace(
                controllerHost, MeshwardCLI.binary.path,
                ["plan", spec, "--detailed-exitcode", "--state-dir", cli.stateDirectory.path])
            #expect(plan.status == 2, "plan from the controller's host: \(plan.output)\n\(plan.error)")
            let said = plan.output + plan.error
            #expect(!said.contains("unreachable"), "\(said)")
            #expect(said.contains("a"), "\(said)")
            // The connection's whole life, its closing segments included, met only the bypass: no
            // drop counter moved on either host (read once both ends of every connection to the
            // agent's port are closed, so that its last segments have been through the policies).
            try await waitUntilClosed(port: 7443, in: [controllerHost, agentHost])
            let after = [try await xfrmCounters(controllerHost), try await xfrmCounters(agentHost)]
            #expect(after == before, "xfrm_stat moved: before \(before), after \(after)")
        }
    }

    @Test(
        "an agent on netlink exempts its port in the SPD: once it is killed, the controller's connection attempt is refused instead of dropped, without waiting for its deadline, and no drop counter moves"
    )
    func deadAgentPortRefusesInsteadOfDropping() async throws {
        try await Lab.with(prefix: "mwp", subnet: 123, cluster: "portbypass") { lab in
            let (controllerHost, agentHost) = (lab.controllerHost, lab.agentHost)
            let (controllerAddress, agentAddress) = (lab.controllerAddress, lab.agentAddress)
            let (cli, spec, directory) = (lab.cli, lab.spec, lab.directory)
            lab.agent = try await AgentProcess(
                directory: directory, listen: "\(agentAddress):7443", namespace: agentHost, simulated: false)
            #expect(
                lab.agent?.errorText.contains("exempted the control port from IPsec") == true,
                "\(lab.agent?.errorText ?? "")")
            let policies = try await inNamespace(agentHost, "/usr/sbin/ip", ["xfrm", "policy", "list"]).output
            #expect(policies.contains("dst \(agentAddress)/32 proto tcp dport 7443"), "\(policies)")
            #expect(policies.contains("src \(agentAddress)/32 dst 0.0.0.0/0 proto tcp sport 7443"), "\(policies)")
            try await Self.demandESP(controllerHost, controllerAddress, agentHost, agentAddress)

            let plan = ["plan", spec, "--detailed-exitcode", "--state-dir", cli.stateDirectory.path]
            let reached = try await inNamespace(controllerHost, MeshwardCLI.binary.path, plan)
            #expect(reached.status == 2, "plan through the live agent: \(reached.output)\n\(reached.error)")

            await lab.agent?.kill()
            let before = [try await xfrmCounters(controllerHost), try await xfrmCounters(agentHost)]
            let refused = try await inNamespace(controllerHost, MeshwardCLI.binary.path, plan)
            #expect(refused.status == 1, "plan with the agent dead: \(refused.output)\n\(refused.error)")
            let said = refused.output + refused.error
            // Refused by TCP (RST): the SYN passed the SPD and the connection attempt failed; a
            // dropped SYN would have left the call waiting out its deadline.
            #expect(said.contains("unreachable"), "\(said)")
            #expect(said.lowercased().contains("could not establish a connection"), "\(said)")
            #expect(!said.contains("no answer before the deadline"), "\(said)")
            try await waitUntilClosed(port: 7443, in: [controllerHost, agentHost])
            let after = [try await xfrmCounters(controllerHost), try await xfrmCounters(agentHost)]
            #expect(after == before, "xfrm_stat moved: before \(before), after \(after)")
        }
    }

    /// The controller's host and an agent's host: two namespaces joined by a veth pair on
    /// 198.18.SUBNET.0/24, a spec with the controller's host as `endpoint: local` and the agent's
    /// as `endpoint: agent` (node `a`), and the agent directory `agent credentials` wrote.
    final class Lab {
        let controllerHost: String
        let agentHost: String
        let controllerAddress: String
        let agentAddress: String
        let cli: MeshwardCLI
        let base: String
        let spec: String
        let directory: String
        var agent: AgentProcess?

        /// Runs `body` with a new lab, closed afterwards whatever happens.
        static func with(
            prefix: String, subnet: Int, cluster: String, _ body: (Lab) async throws -> Void
        ) async throws {
            let lab = try await Lab(prefix: prefix, subnet: subnet, cluster: cluster)
            do {
                try await body(lab)
            } catch {
                await lab.close()
                throw error
            }
            await lab.close()
        }

        private init(prefix: String, subnet: Int, cluster: String) async throws {
            let tag = String(UInt32.random(in: 0...0xFFFF), radix: 16)
            controllerHost = "\(prefix)c-\(tag)"
            agentHost = "\(prefix)a-\(tag)"
            (controllerAddress, agentAddress) = ("198.18.\(subnet).1", "198.18.\(subnet).2")
            cli = try MeshwardCLI()
            base = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-\(cluster)-\(tag)").path
            directory = base + "/agent-a"
            spec = try MeshwardCLI.writeSpec(
                """
                version: 1
                cluster: \(cluster)
                defaults: { drain: 1s }
                nodes:
                  - { name: controller, addresses: [\(controllerAddress)], endpoint: local }
                  - { name: a, addresses: [\(agentAddress)], endpoint: agent }
                flows:
                  - { name: both, from: { name: controller }, to: { name: a } }
                """)
            do {
                try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
                try await ControlSocketBypassTests.pair(
                    controllerHost, controllerAddress, agentHost, agentAddress,
                    devices: ("\(prefix)c0", "\(prefix)a0"))
                let made = try await cli.run(["agent", "credentials", spec, "--node", "a", "--out", directory])
                guard made.status == 0 else { throw AgentProcessError(message: "agent credentials: \(made.error)") }
            } catch {
                await close()
                throw error
            }
        }

        /// Stops the agent, deletes both namespaces, the state and the agent directory.
        func close() async {
            await agent?.stop()
            _ = try? await AgentNamespaceTests.Lab.ip(["netns", "del", controllerHost])
            _ = try? await AgentNamespaceTests.Lab.ip(["netns", "del", agentHost])
            cli.removeState()
            try? FileManager.default.removeItem(atPath: base)
        }
    }

    /// Two namespaces joined by a veth pair, each with its address on its end.
    private static func pair(
        _ first: String, _ firstAddress: String, _ second: String, _ secondAddress: String,
        devices: (String, String)
    ) async throws {
        for namespace in [first, second] {
            try await AgentNamespaceTests.Lab.ip(["netns", "add", namespace])
            try await AgentNamespaceTests.Lab.ip(["-n", namespace, "link", "set", "lo", "up"])
        }
        try await AgentNamespaceTests.Lab.ip([
            "-n", first, "link", "add", devices.0, "type", "veth", "peer", "name", devices.1, "netns", second,
        ])
        for (namespace, device, address) in [(first, devices.0, firstAddress), (second, devices.1, secondAddress)] {
            try await AgentNamespaceTests.Lab.ip(["-n", namespace, "addr", "add", "\(address)/24", "dev", device])
            try await AgentNamespaceTests.Lab.ip(["-n", namespace, "link", "set", device, "up"])
        }
    }

    /// ESP required for every packet between the two hosts, in both kernels, both ways, at the
    /// priority Meshward gives its channel policies.
    private static func demandESP(
        _ first: String, _ firstAddress: String, _ second: String, _ secondAddress: String
    ) async throws {
        for (namespace, own, peer) in [(first, firstAddress, secondAddress), (second, secondAddress, firstAddress)] {
            try await AgentNamespaceTests.Lab.ip([
                "-n", namespace, "xfrm", "policy", "add", "src", "\(own)/32", "dst", "\(peer)/32", "dir", "out",
                "priority", "1000", "tmpl", "src", own, "dst", peer, "proto", "esp", "mode", "transport",
            ])
            try await AgentNamespaceTests.Lab.ip([
                "-n", namespace, "xfrm", "policy", "add", "src", "\(peer)/32", "dst", "\(own)/32", "dir", "in",
                "priority", "1000", "tmpl", "src", peer, "dst", own, "proto", "esp", "mode", "transport",
            ])
        }
    }

    /// The namespace's nonzero `/proc/net/xfrm_stat` counters.
    private func xfrmCounters(_ namespace: String) async throws -> [String: Int] {
        let read = try await inNamespace(namespace, "/bin/cat", ["/proc/net/xfrm_stat"])
        var counters: [String: Int] = [:]
        for line in read.output.split(separator: "\n") {
            let fields = line.split(whereSeparator: \.isWhitespace)
            if fields.count == 2, let value = Int(fields[1]), value != 0 { counters[String(fields[0])] = value }
        }
        return counters
    }

    /// `ip netns exec NAMESPACE EXECUTABLE ARGUMENTS...`, to its end.
    /// Returns once no TCP socket on `port` in `namespaces` is in a state that still sends or
    /// expects a segment of its connection (anything but LISTEN, TIME-WAIT and CLOSED): every
    /// closing segment has been sent and met the peer's policies. Fails the test after 30 s.
    private func waitUntilClosed(port: Int, in namespaces: [String]) async throws {
        let deadline = Date().addingTimeInterval(30)
        var open: [String] = []
        repeat {
            open = []
            for namespace in namespaces {
                open += try await inNamespace(
                    namespace, "/usr/bin/ss",
                    [
                        "-Htan", "exclude", "listening", "exclude", "time-wait",
                        "( sport = :\(port) or dport = :\(port) )",
                    ]
                ).output.split(separator: "\n").map { "\(namespace): \($0)" }
            }
            if open.isEmpty { return }
            try await Task.sleep(for: .milliseconds(20))
        } while Date() < deadline
        Issue.record("connections on port \(port) still open after 30 s: \(open)")
    }

    private func inNamespace(
        _ namespace: String, _ executable: String, _ arguments: [String]
    ) async throws
        -> MeshwardCLI.Result
    {
        try await MeshwardCLI.capture(
            URL(fileURLWithPath: "/usr/sbin/ip"), ["netns", "exec", namespace, executable] + arguments)
    }
}
