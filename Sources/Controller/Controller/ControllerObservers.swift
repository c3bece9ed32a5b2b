import Foundation
import KernelSimulator

/// What a test harness watches in a controller, or changes of it, given where the controller is
/// made (`MeshwardController(observers:)`): `meshward-faulty` arms the test kit's faults with
/// them. `meshward` gives none, so the controller it runs has no hook.
public struct ControllerObservers: Sendable {
    /// Called with the simulated fleet and its file each time a run that changes it (apply,
    /// rekey, reconcile) opened it, before any pass (the crash and pause faults).
    public var simulatedFleetOpened: (@Sendable (SimulatedFleet, URL) -> Void)?
    /// Called with the node's name right before each apply request to its agent leaves, after
    /// every check the controller makes: the lease confirmed, the batch's deadline set, the epoch
    /// written into the request (the agent freeze fault).
    public var beforeAgentApply: (@Sendable (_ node: String) -> Void)?
    /// The host the controller names itself by in the lease (`HOST pid N`); nil for this
    /// machine's name. A standby judges a holder by its own host name only: a holder naming
    /// another host is never checked by pid, so its lease is waited out.
    public var hostName: String?

    public init(
        simulatedFleetOpened: (@Sendable (SimulatedFleet, URL) -> Void)? = nil,
        beforeAgentApply: (@Sendable (_ node: String) -> Void)? = nil, hostName: String? = nil
    ) {
        self.simulatedFleetOpened = simulatedFleetOpened
        self.beforeAgentApply = beforeAgentApply
        self.hostName = hostName
    }

    /// The host name the controller writes into the lease.
    var host: String { hostName ?? ProcessInfo.processInfo.hostName }
}
