import Foundation
import KernelSimulator
import Reconciler
import Synchronization

/// The one place where a test harness reaches the simulated fleet that a controller opens for
/// an apply: `meshward-faulty` arms its crash fault here (the test kit's `SimulatedCrashFault`).
/// Nothing in `meshward` sets it; a fleet of netlink endpoints never calls it.
public enum SimulatedFleetHooks {
    private static let applyObserver = Mutex<(@Sendable (SimulatedFleet, URL) -> Void)?>(nil)

    /// Called with the simulated fleet and its file each time a controller of this process
    /// opens the fleet for a run that changes it (apply, rekey, reconcile), before any pass.
    public static func setApplyObserver(_ observer: (@Sendable (SimulatedFleet, URL) -> Void)?) {
        applyObserver.withLock { $0 = observer }
    }

    static func fleetOpenedForApply(_ fleet: SimulatedFleet, file: URL) {
        applyObserver.withLock { $0 }?(fleet, file)
    }
}
