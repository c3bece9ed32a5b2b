import MeshwardCommands
import MeshwardTestKit

// `meshward` with the simulated crash fault of the test kit armed from the environment
// (`MESHWARD_SIMULATED_CRASH_AFTER`): for the crash-recovery tests only, never released.
SimulatedCrashFault.installForProcess()
await Meshward.runCommandLine()
