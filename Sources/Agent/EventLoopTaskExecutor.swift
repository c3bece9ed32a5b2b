import NIOCore

/// A task executor that runs its jobs on one NIO event loop.
///
/// A control connection's calls run on the event loop that carries the connection: the
/// request is written, and the reply decoded, on the thread that reads and writes its socket,
/// with no hop to the shared pool and back in between.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
