import Foundation
import KernelSimulator
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fault for testing crash recovery on the simulated fleet: the controller dies right after
/// its Nth kernel operation, as if killed.
///
/// Set `MESHWARD_SIMULATED_CRASH_AFTER=N` (N ≥ 1) in the environment of `meshward apply`,
/// `rekey` or `reconcile`. After the Nth operation that the simulated fleet applies in this
/// process, the fleet is saved to its file (a real kernel keeps what it was told) and the
/// process ends at once with `_exit(137)`, the status of a SIGKILL: no lease release, no
/// journal write, no cleanup, so the next run must recover from the Store alone.
///
/// Only the simulated fleet has this hook; netlink endpoints never read the variable.
enum SimulatedCrashFault {
    /// The environment variable that arms the fault.
    static let variable = "MESHWARD_SIMULATED_CRASH_AFTER"

    /// Arms the fault on `fleet` when the environment asks for it; does nothing otherwise.
    static func install(
        on fleet: SimulatedFleet, savingTo file: URL,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        guard let text = environment[variable], let limit = Int(text), limit >= 1 else { return }
        let applied = Mutex(0)
        fleet.setOperationObserver { _, _, outcome, state in
            guard outcome.isApplied else { return }
            let count = applied.withLock { count -> Int in
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
