import Foundation
import Logging
import MeshwardCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The watch of one `NetlinkKernel`: its model, the event socket subscribed before the first
/// dump, and the reader thread that turns each event into changes of the model.
///
/// Ordering: events are received only under `events`' lock, and a resynchronisation holds
/// that lock from discarding the queued events to recording the dump's differences, so no
/// event older than a dump is applied after it. Events of changes made during a dump are
/// applied after it; each says how its object then stood, so the model ends equal to the
/// kernel.
final class NetlinkWatch: Sendable {
    let model: KernelWatchModel
    /// The subscribed socket; its lock orders events against dumps.
    let events: Mutex<NetlinkEventSocket>
    private let node: String
    private let reqid: Reqid
    private let logger: Logger
    /// A pipe whose write end wakes the reader to stop.
    private let wakeup: (read: Int32, write: Int32)
    private let state = Mutex(State.idle)

    /// Where the reader stands.
    private enum State {
        case idle
        case reading
        case stopped
    }

    /// Follows `socket` (already subscribed) for the owner of `reqid`.
    init(node: String, reqid: Reqid, socket: sending NetlinkEventSocket, logger: Logger) throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw NetlinkSocketError("pipe", errno: errno) }
        self.node = node
        self.reqid = reqid
        self.logger = logger
        self.wakeup = (ends[0], ends[1])
        self.events = Mutex(socket)
        self.model = KernelWatchModel(node: node)
    }

    deinit {
        close(wakeup.read)
        close(wakeup.write)
    }

    /// Starts the reader thread. `resynchronize` dumps the kernel and resynchronises the model
    /// (with `lostEvents` after `ENOBUFS`); the reader calls it after a flush or an event it
    /// cannot attribute. It returns false once the kernel is gone.
    func startReading(resynchronize: @escaping @Sendable (_ lostEvents: Bool, _ reason: String) -> Bool) {
        let start = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .reading
            return true
        }
        guard start else { return }
        let thread = Thread { [self] in read(resynchronize: resynchronize) }
        thread.name = "meshward.netlink.watch.\(node)"
        thread.start()
    }

    /// Stops the reader (at once: it is woken) and ends the model's streams with `reason`.
    func stop(reason: String) {
        let wasStopped = state.withLock { state in
            defer { state = .stopped }
            return state == .stopped
        }
        guard !wasStopped else { return }
        var byte: UInt8 = 1
        _ = write(wakeup.write, &byte, 1)
        model.stop(reason: reason)
    }

    /// Whether `stop` was called.
    var isStopped: Bool { state.withLock { $0 == .stopped } }

    /// Receives every queued event and records its changes; says whether the model needs a
    /// dump (a flush, an unattributable event, lost events) and why.
    func applyQueuedEvents() -> (lostEvents: Bool, reason: String)? {
        events.withLock { socket -> (lostEvents: Bool, reason: String)? in
            var needed: (lostEvents: Bool, reason: String)?
            while true {
                let messages: [NetlinkMessage]
                do {
                    guard let received = try socket.receiveQueued() else { return needed }
                    messages = received
                } catch let error as NetlinkSocketError where error.errno == ENOBUFS {
                    needed = (true, "the event socket's queue overflowed (ENOBUFS): events were lost")
                    continue
                } catch {
                    return (needed?.lostEvents ?? false, "the event socket failed: \(error)")
                }
                for message in messages {
                    do {
                        switch try XfrmCodec.event(message, reqid: reqid) {
                        case .changes(let changes):
                            for change in changes { model.record(change) }
                        case .nothing:
                            break
                        case .resynchronize(let reason):
                            if needed == nil { needed = (false, reason) }
                        }
                    } catch {
                        if needed == nil { needed = (false, "an event could not be decoded: \(error)") }
                    }
                }
            }
        }
    }

    private func read(resynchronize: @Sendable (_ lostEvents: Bool, _ reason: String) -> Bool) {
        let descriptor = events.withLock { $0.descriptor }
        var descriptors = [
            pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeup.read, events: Int16(POLLIN), revents: 0),
        ]
        while !isStopped {
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                stop(reason: "waiting for kernel events failed: \(String(cString: strerror(errno)))")
                return
            }
            if descriptors[1].revents != 0 || isStopped { return }
            if descriptors[0].revents & Int16(POLLNVAL) != 0 {
                stop(reason: "the event socket was closed")
                return
            }
            guard let (lostEvents, reason) = applyQueuedEvents() else { continue }
            logger.info(
                "resynchronising the watch", metadata: ["node": "\(node)", "watch.reason": "\(reason)"])
            guard resynchronize(lostEvents, reason) else {
                stop(reason: "the kernel was closed")
                return
            }
        }
    }
}
