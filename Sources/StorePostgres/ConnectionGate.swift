import PostgresNIO
import Synchronization

/// One store instance's connection, used by one transaction at a time: callers wait their turn
/// (in order), so that two calls never interleave statements inside one transaction.
final class ConnectionGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var connection: PostgresConnection?
        var prepared = false
    }

    private let state = Mutex(State())

    /// Waits until no other caller holds the gate, then holds it. Pair with `leave()`.
    func enter() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume = state.withLock { state -> Bool in
                guard state.busy else {
                    state.busy = true
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    /// Lets the next waiter in (it then holds the gate), or frees it.
    func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    /// The open connection, if any; only while holding the gate.
    var connection: PostgresConnection? {
        get { state.withLock { $0.connection } }
        set { state.withLock { $0.connection = newValue } }
    }

    /// True once the schema and master key were checked on this instance.
    var prepared: Bool {
        get { state.withLock { $0.prepared } }
        set { state.withLock { $0.prepared = newValue } }
    }
}
