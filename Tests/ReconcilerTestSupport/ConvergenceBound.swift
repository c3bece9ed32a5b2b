@testable import Reconciler

/// The bound docs/architecture.md states: one change converges in at most this many passes.
/// A new channel takes four steps (receiver, sender SA, sender policy, enforcement) and one
/// pass to confirm; a rekey six (receiver SA, sender SA, switch, old sender SA, drain, confirm)
/// plus the drain wait; removal three. Passes of different channels overlap.
enum ConvergenceBound {
    static let passesPerChange = 9
}
