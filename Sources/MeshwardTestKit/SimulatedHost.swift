import Foundation

/// Makes one controller process stand for a controller on another host, for the takeover tests:
/// `meshward-faulty` with `MESHWARD_SIMULATED_HOST=NAME` names itself `NAME pid N` in the lease,
/// so that the other controllers on this machine cannot check its pid and must wait for its
/// lease to lapse, as they would for a controller on another machine.
public enum SimulatedHost {
    /// The environment variable that names the host.
    public static let variable = "MESHWARD_SIMULATED_HOST"

    /// The host the environment gives (`ControllerObservers.hostName`); nil without one.
    public static func name(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let name = environment[variable], !name.isEmpty else { return nil }
        return name
    }
}
