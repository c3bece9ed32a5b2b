import Foundation
import Kernel
import KernelSimulator
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fault for testing crash recovery on the simulated fleet: the controller dies at a chosen
/// kernel operation, as if killed.
///
/// `meshward-faulty` (the `meshward` command with this fault, built for the tests; the released
/// `meshward` has no fault at all) arms it when `MESHWARD_SIMULATED_CRASH_AFTER` is set in the
/// environment of its `apply`, `rekey` or `reconcile`:
/// - `N` (N ≥ 1): right after the Nth operation that the simulated fleet applies in this process;
/// - `0`: before the first operation takes effect (the Store may already have recorded what it
///   was about to do; no kernel has been told anything);
/// - `refused:N` (N ≥ 1): right after the Nth operation the kernel refused (an injected fault),
///   before the controller could react to the refusal.
///
/// The fleet is then saved to its file (a real kernel keeps what it was told; with `0` the file
/// keeps what it held before this process) and the process ends at once with `_exit(137)`, the
/// status of a SIGKILL: no lease release, no journal write, no cleanup, so the next run must
/// recover from the Store alone.
///
/// Only the simulated fleet has this hook; netlink endpoints never read the variable.
public enum SimulatedCrashFault {
    /// The environment variable that arms the fault.
    public static let variable = "MESHWARD_SIMULATED_CRASH_AFTER"

    /// Where the controller dies.
    public enum CrashPoint: Equatable, Sendable {
        /// At the first operation, before it takes effect.
        case beforeFirstOperation
        /// Right after the Nth applied operation (from 1).
        case afterApplied(Int)
        /// Right after the Nth refused operation (from 1).
        case afterRefused(Int)

        /// `0`, `N` or `refused:N`; nil for anything else (the fault stays off).
        public init?(_ text: String) {
            if text.hasPrefix("refused:") {
                guard let count = Int(text.dropFirst("refused:".count)), count >= 1 else { return nil }
                self = .afterRefused(count)
            } else if let count = Int(text), count >= 0 {
                self = count == 0 ? .beforeFirstOperation : .afterApplied(count)
            } else {
                return nil
            }
        }
    }

    /// The observer that arms the fault on every simulated fleet a controller opens for an
    /// apply (`ControllerObservers.simulatedFleetOpened`), when the environment asks for it;
    /// nil otherwise.
    public static func observer(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (@Sendable (SimulatedFleet, URL) -> Void)? {
        guard environment[variable].flatMap(CrashPoint.init) != nil else { return nil }
        return { fleet, file in install(on: fleet, savingTo: file, environment: environment) }
    }

    /// Arms the fault on `fleet` when the environment asks for it; does nothing otherwise.
    public static func install(
        on fleet: SimulatedFleet, savingTo file: URL,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        guard let text = environment[variable], let point = CrashPoint(text) else { return }
        let counted = Mutex(0)
        fleet.setOperationObserver { _, _, outcome, state in
            let limit: Int
            switch point {
            case .beforeFirstOperation:
                // The operation is in this process's memory only: dying unsaved undoes it.
                _exit(137)
            case .afterApplied(let count):
                guard outcome.isApplied else { return }
                limit = count
            case .afterRefused(let count):
                guard case .failed = outcome else { return }
                limit = count
            }
            let count = counted.withLock { count -> Int in
                count += 1
                return count
            }
            guard count >= limit else { return }
            // The observer runs under the fleet's lock: save the state value it is given.
            try? state.save(to: file)
            _exit(137)
        }
    }
}
