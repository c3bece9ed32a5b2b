import ArgumentParser
import Controller
import DesiredState
import Dispatch
import Foundation
import Logging
import Reconciler
import ServiceLifecycle
import Telemetry

#if canImport(Glibc)
import Glibc
#endif

/// `meshward reconcile SPEC... [--interval 30s] [--once] [--metrics-address HOST:PORT]`: the
/// controller loop, optionally serving `/metrics`, `/healthz` and `/readyz`.
struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Run the controller loop: converge every interval, at once on SIGHUP or a spec change; "
            + "exit cleanly on SIGTERM.",
        discussion: "With --once: one cycle, then exit 0 when it succeeded, 1 otherwise.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Spec files or directories.", valueName: "spec"))
    var specs: [String]

    @Option(
        name: .long, help: ArgumentHelp("Time between cycles, e.g. 30s, 5m, 1h30m.", valueName: "duration"),
        transform: Self.interval(from:))
    var interval: Duration = .seconds(30)

    @Flag(name: .long, help: "Run one cycle and exit.")
    var once = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. 127.0.0.1:9464 (default: off).",
            valueName: "host:port"),
        transform: Self.listenAddress(from:))
    var metricsAddress: ListenAddress?

    @Flag(
        name: .long,
        help:
            "Let every cycle remove more than half of the Store's channels, or recover a lost Store (as apply --force)."
    )
    var force = false

    /// Reads `--interval` with the spec's duration syntax (units from largest to smallest,
    /// each once), so the two never disagree on what a duration is.
    static func interval(from text: String) throws -> Duration {
        try CommandSupport.positiveDuration(text, option: "--interval")
    }

    /// Reads `--metrics-address` (`HOST:PORT`, `[IPV6]:PORT`).
    static func listenAddress(from text: String) throws -> ListenAddress {
        do {
            return try ListenAddress(parsing: text)
        } catch {
            throw ValidationError("\(error).")
        }
    }

    func run() async throws {
        let logger = CommandSupport.logger(global)
        let telemetry = ControllerTelemetry()
        var server: TelemetryServer?
        if let metricsAddress {
            do {
                server = try await TelemetryServer.bind(metricsAddress, routes: telemetry.routes)
            } catch {
                CommandSupport.report(error, output: global.output)
                throw ExitCode.failure
            }
            logger.notice("serving metrics", metadata: ["http.address": "\(server?.address.description ?? "")"])
        }
        let reload = ReloadTrigger()
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        hangup.setEventHandler { reload.fire("SIGHUP") }
        hangup.resume()
        defer { hangup.cancel() }
        let watcher = SpecWatcher(paths: specs, trigger: reload, logger: logger)
        watcher.start()
        defer { watcher.stop() }

        let output = global.output
        let controller = global.controller(logger: logger, recorder: telemetry.recorder)
        // A loop's keeper holds the lease for the whole run, renewing it between cycles, and the
        // loop runs cycles only while it leads (a standby waits for it); `--once` takes the lease
        // for its one cycle, as `apply` does.
        let keeper =
            once ? nil : try await CommandSupport.reportingErrors(global) { try await controller.leaseKeeper() }
        let service = ReconcileService(
            controller: controller, specPaths: specs, interval: interval, once: once, reload: reload,
            logger: logger, force: force, lease: keeper, recorder: telemetry.recorder,
            onCycle: { result in
                // One cycle, one flush: standard output is block-buffered when it is a file or a
                // pipe, and a log collector must see each cycle as it ends.
                defer { fflush(nil) }
                let now = Date()
                switch result {
                case .success(let document):
                    if output == .json {
                        if let line = try? DocumentEncoding.jsonLine(document, timestamp: now) { print(line) }
                    } else {
                        print(ApplyText(document).text)
                    }
                case .failure(let error):
                    CommandSupport.printError(
                        TerminalText.escaped(lines: "\(error)"),
                        prefixed: !((error as? ControllerError)?.isInvalidSpec ?? false))
                    if output == .json, let line = try? DocumentEncoding.jsonLine(ErrorDocument(error), timestamp: now)
                    {
                        print(line)
                    }
                }
            })
        // A group shuts its services down in reverse order: the loop stops first, then the keeper
        // gives the lease back, and the server goes last, so /metrics and /readyz answer until
        // the loop's last pass has ended.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let server { services.append(.init(service: server)) }
        if let keeper { services.append(.init(service: keeper, successTerminationBehavior: .gracefullyShutdownGroup)) }
        services.append(.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await controller.close()
            throw ExitCode.failure
        }
        // The loop kept one connection per agent across its cycles: each is closed cleanly.
        await controller.close()
    }
}
