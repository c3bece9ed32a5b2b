import Controller
import Foundation
import MeshwardTestKit

extension ControllerObservers {
    /// The test kit's faults the environment arms (`meshward-faulty`): the simulated crash or
    /// pause (one of them per process), the agent freeze, and the stand-in host; none when the
    /// environment names none.
    public static func faults(environment: [String: String] = ProcessInfo.processInfo.environment) -> Self {
        ControllerObservers(
            simulatedFleetOpened: SimulatedCrashFault.observer(environment: environment)
                ?? SimulatedPauseFault.observer(environment: environment),
            beforeAgentApply: AgentFreezeFault.observer(environment: environment),
            hostName: SimulatedHost.name(environment: environment))
    }
}
