/// A kernel on this host that can keep a watch model of its owned objects: the agent's own
/// kernel (netlink in its namespace, or the simulated kernel behind an in-process agent), and a
/// controller's `endpoint: local` and `netns:` nodes.
public protocol WatchedKernel: NodeKernel {
    /// Starts watching, once: subscribes to the kernel's changes before its first dump, fills the
    /// model from that dump, and keeps it current from then on. Later calls return the same
    /// model while the watch runs (a netlink watch whose reader stopped is started anew, with a
    /// new model). Throws when the kernel cannot be watched (the subscription was refused).
    func startWatching() async throws -> KernelWatchModel
}
