import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Fires a `ReloadTrigger` when a spec file changes, by inotify on the directories that hold
/// the spec paths (a saved file is often renamed into place, so its directory is watched, not
/// the file). A change is a file written, moved in, created, deleted or re-permissioned there
/// that the spec paths name (a file path, or any `*.yaml`, `*.yml`, `*.json` of a directory).
///
/// Runs on a thread of its own, blocked in `poll(2)` on the inotify descriptor and a pipe that
/// `stop()` writes to; nothing is polled on a timer. Where inotify is not available the
/// watcher does nothing (the interval and SIGHUP still start cycles).
public final class SpecWatcher: @unchecked Sendable {
    private let paths: [String]
    private let trigger: ReloadTrigger
    private let logger: Logger
    private var inotify: Int32 = -1
    private var wake: [Int32] = [-1, -1]
    private var thread: Thread?
    /// Watch descriptor -> (directory, the names in it that count; nil for every spec file).
    private var watches: [Int32: (directory: String, names: Set<String>?)] = [:]

    public init(paths: [String], trigger: ReloadTrigger, logger: Logger) {
        self.paths = paths
        self.trigger = trigger
        self.logger = logger
    }

    /// Starts watching. Safe to call once.
    public func start() {
        #if canImport(Glibc)
        inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotify >= 0, pipe(&wake) == 0 else {
            logger.warning("cannot watch the spec files; the interval and SIGHUP still reload")
            return
        }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB)
        var byDirectory: [String: Set<String>?] = [:]
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                byDirectory[path] = .some(nil)
            } else {
                let directory = (path as NSString).deletingLastPathComponent
                let key = directory.isEmpty ? "." : directory
                let name = (path as NSString).lastPathComponent
                if case .some(.some(var names)) = byDirectory[key] {
                    names.insert(name)
                    byDirectory[key] = .some(names)
                } else if byDirectory[key] == nil {
                    byDirectory[key] = .some([name])
                }
            }
        }
        for (directory, names) in byDirectory {
            let descriptor = inotify_add_watch(inotify, directory, mask)
            if descriptor >= 0 {
                watches[descriptor] = (directory, names)
            } else {
                logger.warning("cannot watch a spec directory", metadata: ["spec.directory": "\(directory)"])
            }
        }
        let thread = Thread { [self] in self.run() }
        thread.name = "meshward.spec-watcher"
        self.thread = thread
        thread.start()
        #endif
    }

    /// Stops the watcher thread and closes its descriptors.
    public func stop() {
        guard wake[1] >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(wake[1], &byte, 1)
    }

    private func run() {
        #if canImport(Glibc)
        defer {
            close(inotify)
            close(wake[0])
            close(wake[1])
        }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            var descriptors = [
                pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0),
            ]
            guard poll(&descriptors, 2, -1) >= 0 || errno == EINTR else { return }
            if descriptors[1].revents != 0 { return }
            guard descriptors[0].revents != 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            guard count > 0 else { continue }
            if let name = firstRelevantName(in: buffer, count: count) {
                logger.debug("spec file changed", metadata: ["spec.file": "\(name)"])
                trigger.fire("spec changed")
            }
        }
        #endif
    }

    /// The first event in `buffer` that concerns a spec file, as a path.
    private func firstRelevantName(in buffer: [UInt8], count: Int) -> String? {
        #if canImport(Glibc)
        let header = MemoryLayout<inotify_event>.size
        var offset = 0
        while offset + header <= count {
            let (descriptor, length) = buffer.withUnsafeBytes { raw -> (Int32, Int) in
                let event = raw.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                return (event.wd, Int(event.len))
            }
            let nameBytes = buffer[(offset + header)..<min(count, offset + header + length)].prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            offset += header + length
            guard let watch = watches[descriptor] else { continue }
            if let names = watch.names {
                if names.contains(name) { return (watch.directory as NSString).appendingPathComponent(name) }
            } else if name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json") {
                return (watch.directory as NSString).appendingPathComponent(name)
            }
        }
        #endif
        return nil
    }
}
