import Synchronization

/// The one place where a test harness reaches a controller's applies to agents, right before a
/// batch leaves: after every check the controller makes (the lease confirmed, the batch's
/// deadline set, the epoch written into the request). `meshward-faulty` freezes its process
/// there (the test kit's `AgentFreezeFault`), so that a test can depose it while its request
/// is on its way. Nothing in `meshward` sets it.
public enum AgentApplyHooks {
    private static let beforeSend = Mutex<(@Sendable (_ node: String) -> Void)?>(nil)

    /// Called with the node's name right before each apply request to its agent is sent.
    public static func setBeforeSend(_ hook: (@Sendable (_ node: String) -> Void)?) {
        beforeSend.withLock { $0 = hook }
    }

    static func sending(to node: String) {
        beforeSend.withLock { $0 }?(node)
    }
}
