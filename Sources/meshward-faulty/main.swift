import Controller
import MeshwardCommands
import MeshwardTestKit

// `meshward` with the simulated faults of the test kit armed from the environment: the crash
// (`MESHWARD_SIMULATED_CRASH_AFTER`) and the pause (`MESHWARD_SIMULATED_PAUSE_AFTER`), for the
// crash-recovery, outage and takeover tests only, never released. One of them per process. A
// process may also stand for a controller on another host (`MESHWARD_SIMULATED_HOST`), and
// stop itself right before an apply leaves for an agent (`MESHWARD_AGENT_FREEZE_BEFORE_APPLY`).
// They reach the controllers of this process as their observers, nowhere else.
await Meshward.runCommandLine(observers: .faults())
