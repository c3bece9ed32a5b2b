import Foundation
import Synchronization

extension Array where Element: Sendable {
    /// `map(transform)`, in the same order, with runs of `run` elements transformed on every
    /// core: for the plan's millions of operations, whose labels are formatted one by one, and
    /// the verbose text's lines of them.
    package func mapInRuns<Mapped: Sendable>(run: Int = 16_384, _ transform: @Sendable (Element) -> Mapped) -> [Mapped]
    {
        guard count > run else { return map(transform) }
        let runs = (count + run - 1) / run
        let mapped = Mutex([[Mapped]](repeating: [], count: runs))
        DispatchQueue.concurrentPerform(iterations: runs) { index in
            let part = self[(index * run)..<Swift.min(count, (index + 1) * run)].map(transform)
            mapped.withLock { $0[index] = part }
        }
        return mapped.withLock { parts in
            var joined: [Mapped] = []
            joined.reserveCapacity(count)
            for part in parts { joined.append(contentsOf: part) }
            return joined
        }
    }
}
