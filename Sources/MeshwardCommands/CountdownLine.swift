import Foundation
import Reconciler
import Synchronization

/// The drain countdown on a terminal: one line on standard error, rewritten every second
/// (`\r`, then erase to the end of line) until `stop()`. Only `apply` on a terminal starts it.
final class CountdownLine: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Shows the seconds left until `deadline`, every second, until `stop()` or the deadline.
    func start(until deadline: Date) {
        let next = Task {
            while !Task.isCancelled {
                let left = deadline.timeIntervalSinceNow
                Self.write("\r" + DrainCountdown.line(secondsLeft: left) + "\u{1B}[K")
                if left <= 0 { break }
                try? await Task.sleep(for: .seconds(min(1, left)))
            }
        }
        task.withLock { current in
            current?.cancel()
            current = next
        }
    }

    /// Stops the countdown and erases its line; nothing when none runs.
    func stop() {
        guard
            let running = task.withLock({ current -> Task<Void, Never>? in
                defer { current = nil }
                return current
            })
        else { return }
        running.cancel()
        Self.write("\r\u{1B}[K")
    }

    private static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
