import Synchronization

/// Large values that a one-shot command's process keeps until it exits instead of freeing
/// them, as compilers do: freeing a plan's million records, readings and operations costs a
/// second of one core at the end of `meshward plan`, and the exit returns the memory anyway.
///
/// Off unless a command turns it on (`keepUntilExit()`), so a long-running controller frees
/// everything as usual; `keep` is then a no-op.
public final class ExitWithoutFreeing: Sendable {
    /// The process's own: what `PlanRehearsal` hands its values to.
    public static let process = ExitWithoutFreeing()

    private let kept = Mutex<[any Sendable]?>(nil)

    init() {}

    /// From now on, `keep` holds what it is given until the process exits. For commands whose
    /// process ends when they do.
    public func keepUntilExit() {
        kept.withLock { kept in
            if kept == nil { kept = [] }
        }
    }

    /// Holds `value` until the process exits, when `keepUntilExit()` was called; otherwise
    /// nothing (the value is freed when its last holder lets go, as always).
    public func keep(_ value: some Sendable) {
        kept.withLock { kept in kept?.append(value) }
    }
}
