import Kernel
import Synchronization

/// Holds back watch messages, as a slow path between an agent and the controller would: once
/// `hold(_:)` is armed for a node, the next change on its stream and every message after it
/// (progress, later changes, the stream's ending) are kept, in order, until `release(_:)`
/// delivers them. A stream is ordered: nothing after a held message overtakes it.
final class WatchDelay: Sendable {
    typealias Continuation = AsyncThrowingStream<WatchMessage, any Error>.Continuation

    private enum Held {
        case message(WatchMessage, Continuation)
        case end(Continuation, (any Error)?)
    }

    private struct State {
        var armed: Set<String> = []
        /// Per node whose holding began: what is held, oldest first.
        var held: [String: [Held]] = [:]
    }

    private let state = Mutex(State())
    private let onHold: @Sendable () -> Void

    /// - Parameter onHold: told after each message held (for tests that wait for them).
    init(onHold: @escaping @Sendable () -> Void = {}) {
        self.onHold = onHold
    }

    /// From now on, holds `node`'s next change and everything after it.
    func hold(_ node: String) {
        _ = state.withLock { $0.armed.insert(node) }
    }

    /// The seqs of the changes of `node` held now, oldest first.
    func heldChanges(of node: String) -> [UInt64] {
        state.withLock { state in
            (state.held[node] ?? []).compactMap {
                if case .message(.change(let seq, _), _) = $0 { seq } else { nil }
            }
        }
    }

    /// Delivers everything held for `node`, in order, and stops holding it; returns how many
    /// messages it delivered.
    @discardableResult
    func release(_ node: String) -> Int {
        let ending = state.withLock { state -> (delivered: Int, ends: [(Continuation, (any Error)?)]) in
            state.armed.remove(node)
            var delivered = 0
            var ends: [(Continuation, (any Error)?)] = []
            // Yielded under the lock, so that a message the stream passes meanwhile comes after them.
            for held in state.held.removeValue(forKey: node) ?? [] {
                switch held {
                case .message(let message, let continuation):
                    continuation.yield(message)
                    delivered += 1
                case .end(let continuation, let error):
                    ends.append((continuation, error))
                }
            }
            return (delivered, ends)
        }
        for (continuation, error) in ending.ends { continuation.finish(throwing: error) }
        return ending.delivered
    }

    /// Passes one message of `node`'s stream on to `continuation`, or holds it.
    func pass(_ message: WatchMessage, of node: String, to continuation: Continuation) {
        let held = state.withLock { state -> Bool in
            let holding = state.held[node] != nil
            guard holding || state.armed.contains(node) else {
                continuation.yield(message)
                return false
            }
            if !holding {
                guard case .change = message else {
                    continuation.yield(message)
                    return false
                }
            }
            state.held[node, default: []].append(.message(message, continuation))
            return true
        }
        if held { onHold() }
    }

    /// Ends `node`'s stream on `continuation` with `error`, after whatever is held before it.
    func end(of node: String, _ continuation: Continuation, throwing error: (any Error)?) {
        let now = state.withLock { state -> Bool in
            guard state.held[node] != nil else { return true }
            state.held[node]?.append(.end(continuation, error))
            return false
        }
        if now { continuation.finish(throwing: error) }
    }
}
