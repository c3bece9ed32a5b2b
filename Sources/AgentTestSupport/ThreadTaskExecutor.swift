import Foundation

/// A task executor with a thread of its own. In-process test agents run on it, so that tests
/// which block the shared cooperative pool (waiting for a child process) cannot starve an
/// agent past its callers' deadlines, which a real agent on another host never shares.
public final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    /// One executor for every in-process agent of a test process.
    public static let shared = ThreadTaskExecutor(name: "meshward.test-agents")

    public init(name: String) {
        let thread = Thread { [unowned self] in self.run() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
