import Kernel
import Synchronization

@testable import Controller

/// The positions a watch's copies stood at after each message it took in and each stream that
/// ended, per node, in order.
final class WatchTrail: Sendable {
    private struct State {
        var watch: FleetWatch?
        var positions: [String: [WatchPosition?]] = [:]
    }

    private let state = Mutex(State())

    /// Follows `watch` from now on, forgetting what an earlier one went through.
    func follow(_ watch: FleetWatch) {
        state.withLock { $0 = State(watch: watch) }
    }

    /// Notes where the copy of `node` stands now.
    func note(_ node: String) {
        let watch = state.withLock { $0.watch }
        let position = watch?.position(of: node)
        state.withLock { $0.positions[node, default: []].append(position) }
    }

    /// Where the copy of `node` stood after each message and ending so far.
    func positions(of node: String) -> [WatchPosition?] {
        state.withLock { $0.positions[node] ?? [] }
    }
}
