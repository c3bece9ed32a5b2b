import Foundation
import Kernel
import KernelSimulator
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fault for testing what a controller does when the world changes under a pass: the pass
/// stops in the middle, right after a chosen kernel operation, until the test lets it go on.
///
/// `meshward-faulty` arms it when `MESHWARD_SIMULATED_PAUSE_AFTER` is `N:FILE` in the
/// environment of its `apply`, `rekey` or `reconcile`: right after the Nth operation that the
/// simulated fleet applies in one run (the first run of the process that reaches N), it
/// saves the fleet to its file (a real kernel keeps what it was told), creates FILE and waits,
/// holding the pass where it is, until FILE is removed. It pauses once per process. The test
/// stops the database (or anything else) while FILE exists, or kills the process (SIGKILL).
///
/// Only the simulated fleet has this hook; netlink endpoints never read the variable.
public enum SimulatedPauseFault {
    /// The environment variable that arms the fault.
    public static let variable = "MESHWARD_SIMULATED_PAUSE_AFTER"

    /// Where and how to pause: after the `count`th applied operation, signalled through `file`.
    public struct PausePoint: Equatable, Sendable {
        public var count: Int
        public var file: String

        /// `N:FILE` with N ≥ 1; nil for anything else (the fault stays off).
        public init?(_ text: String) {
            guard let colon = text.firstIndex(of: ":"), let count = Int(text[..<colon]), count >= 1 else {
                return nil
            }
            let file = String(text[text.index(after: colon)...])
            guard !file.isEmpty else { return nil }
            self.count = count
            self.file = file
        }
    }

    private static let paused = Mutex(false)

    /// The observer that arms the fault on every simulated fleet a controller opens for an
    /// apply (`ControllerObservers.simulatedFleetOpened`), when the environment asks for it;
    /// nil otherwise.
    public static func observer(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (@Sendable (SimulatedFleet, URL) -> Void)? {
        guard let point = environment[variable].flatMap(PausePoint.init) else { return nil }
        return { fleet, fleetFile in
            let counted = Mutex(0)
            fleet.setOperationObserver { _, _, outcome, state in
                guard outcome.isApplied else { return }
                let count = counted.withLock { count -> Int in
                    count += 1
                    return count
                }
                guard count == point.count else { return }
                let first = paused.withLock { paused in
                    defer { paused = true }
                    return !paused
                }
                guard first else { return }
                // The observer runs in the middle of the batch, under the fleet's lock: save the
                // state value it is given; the rest of the pass waits here.
                try? state.save(to: fleetFile)
                _ = FileManager.default.createFile(atPath: point.file, contents: Data("\(getpid())\n".utf8))
                while FileManager.default.fileExists(atPath: point.file) { usleep(50_000) }
            }
        }
    }
}
