import Synchronization

/// The agent's fence at the point of side effects: the highest controller lease epoch it has
/// accepted, persisted in the agent directory before any apply that raised it touches the kernel.
/// An apply with a lower epoch comes from a deposed controller and is refused.
final class EpochGate: Sendable {
    private let node: String
    private let persist: @Sendable (UInt64) throws -> Void
    private let highest: Mutex<UInt64>

    init(node: String, highest: UInt64, persist: @escaping @Sendable (UInt64) throws -> Void) {
        self.node = node
        self.persist = persist
        self.highest = Mutex(highest)
    }

    var current: UInt64 { highest.withLock { $0 } }

    /// Accepts `epoch` when it is at least the highest seen, recording a higher one durably first.
    func admit(_ epoch: UInt64) throws {
        try highest.withLock { highest in
            guard epoch >= highest else {
                throw AgentError.staleEpoch(node: node, presented: epoch, highest: highest)
            }
            if epoch > highest {
                try persist(epoch)
                highest = epoch
            }
        }
    }
}
