import Foundation
import Reconciler
import Synchronization

/// The host a controller names itself by in the lease (`HOST pid N`): this machine's name,
/// unless a test harness makes a process stand for another host (`meshward-faulty` with the
/// test kit's `SimulatedHost`). A standby judges a holder by its own host name only: a holder
/// naming another host is never checked by pid, so its lease is waited out. Nothing in
/// `meshward` sets it.
public enum ControllerHost {
    private static let standIn = Mutex<String?>(nil)

    /// Makes this process name itself `name` in the lease, as if it ran on that host.
    public static func stand(for name: String) {
        standIn.withLock { $0 = name }
    }

    /// The host name this controller writes into the lease.
    static var name: String { standIn.withLock { $0 } ?? ProcessInfo.processInfo.hostName }
}
