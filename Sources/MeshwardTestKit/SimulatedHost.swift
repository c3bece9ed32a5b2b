import Controller
import Foundation
import Reconciler

/// Makes one controller process stand for a controller on another host, for the takeover tests:
/// `meshward-faulty` with `MESHWARD_SIMULATED_HOST=NAME` names itself `NAME pid N` in the lease,
/// so that the other controllers on this machine cannot check its pid and must wait for its
/// lease to lapse, as they would for a controller on another machine.
public enum SimulatedHost {
    /// The environment variable that names the host.
    public static let variable = "MESHWARD_SIMULATED_HOST"

    /// Names this process after the host the environment gives; does nothing without one.
    public static func installForProcess(environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let name = environment[variable], !name.isEmpty else { return }
        ControllerHost.stand(for: name)
    }
}
