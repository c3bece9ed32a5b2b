import MeshwardCommands
import MeshwardTestKit

// `meshward` with the simulated faults of the test kit armed from the environment: the crash
// (`MESHWARD_SIMULATED_CRASH_AFTER`) and the pause (`MESHWARD_SIMULATED_PAUSE_AFTER`), for the
// crash-recovery and outage tests only, never released. One of them per process.
SimulatedCrashFault.installForProcess()
SimulatedPauseFault.installForProcess()
await Meshward.runCommandLine()
