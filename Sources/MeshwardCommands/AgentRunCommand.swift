import Agent
import ArgumentParser
import Foundation
import Identity
import Kernel
import KernelSimulator
import Logging
import MeshwardCore
import ServiceLifecycle
import Telemetry

/// `meshward agent run`: serves this host's kernel (observe, apply) to the cluster's controllers
/// over gRPC with mutual TLS, until SIGTERM or SIGINT (a `ServiceGroup`'s graceful shutdown).
struct AgentRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve this host's IPsec databases to the cluster's controllers over mutual TLS.",
        discussion:
            "The agent directory holds the agent's key and certificate, the cluster CA certificate, the highest "
            + "controller epoch seen and the boot guard list; write it with `meshward agent credentials`. It must be "
            + "0700 and its files 0600. At start, before it listens, the agent blocks traffic to the peers in the boot "
            + "guard list that its kernel has no policy for (after a reboot), until the controller restores them. "
            + "With --join-token-file and no credentials in the directory, the agent first makes its key and serves "
            + "only enrollment on a provisional certificate, accepting only a controller of the CA the token pins; "
            + "once enrolled it writes its directory, deletes the token file and serves its kernel on the same port.")

    @Option(name: .customLong("agent-dir"), help: ArgumentHelp("The agent directory.", valueName: "dir"))
    var agentDirectory = AgentDirectory.defaultPath

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Where to listen, ADDRESS:PORT ([ADDRESS]:PORT for IPv6; [::]:7443 for every address).",
            valueName: "address"))
    var listen = "0.0.0.0:7443"

    @Option(
        name: .customLong("join-token-file"),
        help: ArgumentHelp(
            "Join with the token in this file (0600, as `meshward agent token` printed it) when the agent directory "
                + "holds no credentials; deleted once enrolled. Needs --node and --cluster.",
            valueName: "file"))
    var joinTokenFile: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --join-token-file: the node this host is in the spec (the name its CSR carries).", valueName: "name"))
    var node: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --join-token-file: the spec's cluster (the controller's certificate must name it).",
            valueName: "name"))
    var cluster: String?

    @Option(name: .long, help: ArgumentHelp("Serve the kernel of this network namespace (tests).", valueName: "name"))
    var netns: String?

    @Flag(
        name: .long, help: "Back the agent with an in-memory simulated kernel instead of netlink (tests, benchmarks).")
    var simulated = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9465 (default: off).",
            valueName: "host:port"),
        transform: ReconcileCommand.listenAddress(from:))
    var metricsAddress: ListenAddress?

    @Flag(name: .long, help: "Print more detail.")
    var verbose = false

    @Option(
        name: .customLong("log-format"),
        help: "Log lines on standard error: text (for people) or json (one object per line, for machines).")
    var logFormat: LogFormat = .text

    func validate() throws {
        guard Self.listenAddress(listen) != nil else {
            throw ValidationError(
                "--listen '\(listen)': use ADDRESS:PORT, an IPv6 address in brackets ([::1]:7443), port 0-65535 (0 picks a free one)."
            )
        }
        if let netns, !NodeEndpoint.isValidNamespaceName(netns) {
            throw ValidationError("--netns '\(netns)': a namespace name is letters, digits, '.', '_' and '-'.")
        }
        if simulated, netns != nil { throw ValidationError("--simulated and --netns exclude each other.") }
        if joinTokenFile != nil {
            guard let node, !node.isEmpty else {
                throw ValidationError("--join-token-file needs --node NAME: the node this host is in the spec.")
            }
            guard let cluster, !cluster.isEmpty else {
                throw ValidationError("--join-token-file needs --cluster NAME: the spec's cluster.")
            }
        } else if node != nil || cluster != nil {
            throw ValidationError(
                "--node and --cluster are for --join-token-file only; an enrolled agent's certificate names both.")
        }
    }

    /// Parses `ADDRESS:PORT` with a literal IP address (IPv6 in brackets); port 0 picks a free
    /// one. Nil when malformed.
    static func listenAddress(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port), text[text.index(after: colon)...].allSatisfy(\.isASCII)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard IPAddress(host)?.family == .ipv6 else { return nil }
        } else {
            guard IPAddress(host)?.family == .ipv4 else { return nil }
        }
        return (host, port)
    }

    /// Exempts the listening port from IPsec in the kernel's SPD (`ControlPortBypass`), so a
    /// controller that dials while no agent listens is refused at once instead of dropped.
    static func installPortBypass(
        host: String, port: Int, node: String, endpoint: NodeEndpoint, logger: Logger
    ) async throws {
        let address = IPAddress(host).flatMap { $0 == .unspecified($0.family) ? nil : $0 }
        let bypass = ControlPortBypass(address: address, port: UInt16(port))
        let kernel = try NetlinkKernel(node: node, endpoint: endpoint, reqid: .meshwardDefault, logger: logger)
        try await kernel.installControlPortBypass(bypass, deadline: .now + .seconds(10))
        await kernel.close()
        logger.info(
            "exempted the control port from IPsec",
            metadata: ["node": "\(node)", "bypass": "\(bypass)", "priority": "\(ControlPortBypass.priority)"])
    }

    func run() async throws {
        let logger = CommandSupport.logger(verbose: verbose, format: logFormat)
        let directory = AgentDirectory(path: agentDirectory)
        try await CommandSupport.reportingErrors(output: .text) {
            try directory.prepare()
            guard let address = Self.listenAddress(listen) else { throw ExitCode.failure }
            // One group traps SIGTERM and SIGINT from here to the end, so that a signal during the
            // boot guard, the enrollment or the switch to serving stops what runs then or next;
            // the agent's own group (`serve`) runs inside it and shuts down with it.
            let agent = ClosureService {
                try await serve(host: address.host, port: address.port, directory: directory, logger: logger)
            }
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    /// Enrolls first when the directory holds no credentials and a join token is given, then
    /// serves the node's kernel and the metrics until the graceful shutdown of the group it runs in.
    func serve(host: String, port: Int, directory: AgentDirectory, logger: Logger) async throws {
        var port = port
        if let joinTokenFile, let node, let cluster {
            if try directory.hasCredentials {
                logger.notice(
                    "the agent directory holds credentials; the join token is not used",
                    metadata: ["directory": "\(directory.path)", "token.file": "\(joinTokenFile)"])
            } else {
                if !simulated {
                    // Before the host serves anything: its applications may start at any time.
                    _ = try await JoinBootGuard.install(
                        node: node, directory: directory, connector: NetlinkConnector(logger: logger),
                        endpoint: netns.map { .namespace($0) } ?? .local, logger: logger)
                }
                port = try await join(
                    tokenFile: joinTokenFile, node: node, cluster: cluster, host: host, port: port,
                    directory: directory, logger: logger)
            }
        }
        let credentials = try directory.readCredentials()
        let own = try IssuedCredential(
            certificatePEM: credentials.certificatePEM, privateKeyPEM: credentials.privateKeyPEM)
        let connector: any KernelConnector
        let endpoint: NodeEndpoint
        if simulated {
            let fleet = SimulatedFleet()
            if case .node(_, let name) = PeerVerifier.identity(of: own.certificate) {
                let addresses = PeerVerifier.addresses(of: own.certificate)
                fleet.withState { $0.addNode(name, addresses: addresses) }
            }
            connector = SimulatedConnector(fleet: fleet)
            endpoint = .sim
        } else {
            connector = NetlinkConnector(logger: logger)
            endpoint = netns.map { .namespace($0) } ?? .local
        }
        let telemetry = AgentTelemetry()
        let server = try AgentServer(
            credentials: credentials, host: host, port: port, connector: connector, endpoint: endpoint,
            directory: directory, recorder: telemetry.recorder, logger: logger)
        // A group shuts its services down in reverse order: the agent stops first (its open calls
        // finish), and the metrics go last, so /metrics and /readyz answer until the agent
        // stopped serving.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsAddress {
            let bound = try await TelemetryServer.bind(metricsAddress, routes: telemetry.routes(for: server))
            logger.notice("serving metrics", metadata: ["http.address": "\(bound.address)"])
            services.append(.init(service: bound))
        }
        services.append(.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup))
        let serving = ServiceGroup(configuration: .init(services: services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serving.run() }
            let bound = try await server.listeningPort()
            if !simulated {
                try await Self.installPortBypass(
                    host: host, port: bound, node: server.node, endpoint: endpoint, logger: logger)
            }
            logger.notice(
                "agent listening",
                metadata: [
                    "node": "\(server.node)", "cluster": "\(server.cluster)", "listen": "\(host):\(bound)",
                    "kernel": "\(endpoint)",
                ])
            try await group.next()
            group.cancelAll()
        }
        logger.notice("agent stopped", metadata: ["node": "\(server.node)"])
    }

    /// Serves enrollment on `host:port` until a controller enrolled this host (its directory
    /// then holds the credentials); returns the port it listened on, where the agent serves next.
    /// The graceful shutdown of the group it runs in stops it (`AgentError.notEnrolled`).
    func join(
        tokenFile: String, node: String, cluster: String, host: String, port: Int, directory: AgentDirectory,
        logger: Logger
    ) async throws -> Int {
        let token = try AgentDirectory.readJoinToken(at: tokenFile)
        let joining = try JoiningAgent(
            token: token, cluster: cluster, node: node, host: host, port: port, directory: directory,
            tokenFile: tokenFile, logger: logger)
        return try await withThrowingTaskGroup(of: Int?.self) { group in
            group.addTask {
                _ = try await joining.run()
                return nil
            }
            let bound = try await joining.listeningPort()
            if !simulated {
                let endpoint: NodeEndpoint = netns.map { .namespace($0) } ?? .local
                try await Self.installPortBypass(
                    host: host, port: bound, node: node, endpoint: endpoint, logger: logger)
            }
            logger.notice(
                "agent waiting for enrollment",
                metadata: [
                    "node": "\(node)", "cluster": "\(cluster)", "listen": "\(host):\(bound)", "token": "\(token.id)",
                    "token.ca": "\(token.caFingerprintHex)",
                ])
            _ = try await group.next()
            return bound
        }
    }
}
