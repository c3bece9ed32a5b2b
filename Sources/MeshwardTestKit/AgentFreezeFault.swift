import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fault for testing the agents' epoch fence across processes: the controller's whole
/// process stops (SIGSTOP, as a paused VM or a long stall would stop it) right before one of
/// its apply requests leaves for an agent, after every check the controller makes; the test
/// lets another controller take the lease meanwhile, then continues it (SIGCONT), and the
/// request goes out under the epoch the process held before it stopped.
///
/// `meshward-faulty` arms it when `MESHWARD_AGENT_FREEZE_BEFORE_APPLY` is `N` (N ≥ 1): before
/// the Nth apply request this process sends to any agent, once the next one is on its way too
/// (or 2 s have passed). It stops once per process.
public enum AgentFreezeFault {
    /// The environment variable that arms the fault.
    public static let variable = "MESHWARD_AGENT_FREEZE_BEFORE_APPLY"

    /// The observer that arms the fault (`ControllerObservers.beforeAgentApply`) when the
    /// environment asks for it; nil otherwise.
    public static func observer(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (@Sendable (String) -> Void)? {
        guard let text = environment[variable], let count = Int(text), count >= 1 else { return nil }
        let sent = Mutex(0)
        return { _ in
            let number = sent.withLock { sent -> Int in
                sent += 1
                return sent
            }
            guard number == count else { return }
            // The pass sends its nodes' batches in parallel, each right after its own lease
            // confirmation, a write transaction. Stopped while another node's confirmation holds
            // the Store's write lock, the process would keep the Store locked for every other
            // controller, which is not what the test is about: wait until the next batch has
            // reached this point too (its confirmation done), or 2 s.
            let waitUntil = ContinuousClock.now + .seconds(2)
            while sent.withLock({ $0 }) == count && ContinuousClock.now < waitUntil { usleep(10_000) }
            raise(SIGSTOP)
        }
    }
}
