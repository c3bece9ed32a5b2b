import Metrics
import Synchronization

/// Turns the kernel's absolute XFRM statistics (`/proc/net/xfrm_stat`, counting since boot) into
/// increments of Prometheus counters, so an exported counter follows the kernel's value: a node
/// seen for the first time contributes its whole value, and a value lower than the last one (the
/// node rebooted) starts the series over, which `rate()` reads as a counter reset.
///
/// A counter that never moved is not exported (a fleet's nodes times the kernel's 28 counters
/// would be mostly zeros); it appears when it first moves.
final class DropCounterFeed: Sendable {
    /// The values last observed, per node.
    private let last = Mutex<[String: [String: UInt64]]>([:])

    init() {}

    /// Adds what each of `observed`'s counters moved since the last observation of its node to
    /// the counter `counter(node, name)` returns.
    func feed(_ observed: [String: [String: UInt64]], counter: (_ node: String, _ name: String) -> Counter) {
        let previous = last.withLock { last -> [String: [String: UInt64]] in
            let previous = last
            for (node, counters) in observed { last[node] = counters }
            return previous
        }
        for (node, counters) in observed {
            for (name, value) in counters where value > 0 || previous[node]?[name].map({ $0 > 0 }) == true {
                let exported = counter(node, name)
                let before = previous[node]?[name]
                if let before, value >= before {
                    if value > before { exported.increment(by: value - before) }
                } else {
                    if before != nil { exported.reset() }
                    exported.increment(by: value)
                }
            }
        }
    }
}
