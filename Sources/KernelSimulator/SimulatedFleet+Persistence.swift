import Foundation
import Kernel
import MeshwardCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The simulated fleet could not be loaded or saved.
public struct SimulatedFleetPersistenceError: Error, Sendable, CustomStringConvertible {
    /// The file involved.
    public let path: String
    /// What went wrong.
    public let reason: String

    public var description: String { "simulated fleet file \(path): \(reason)" }
}

extension SimulatedFleet {
    /// Loads a fleet saved by `save(to:)`; a missing file gives an empty fleet.
    ///
    /// Refuses a file that group or others may read or write, as the state directory's other
    /// files are refused (the error says which `chmod` fixes it): it lists every SA and key
    /// fingerprint of the fleet, and a file someone loosened must be noticed, not rewritten.
    public static func load(from url: URL) throws -> SimulatedFleet {
        var info = stat()
        if stat(url.path, &info) == 0, info.st_mode & 0o077 != 0 {
            throw SimulatedFleetPersistenceError(
                path: url.path,
                reason: "has mode \(String(info.st_mode & 0o7777, radix: 8)), which lets other users read or change "
                    + "it; run 'chmod 600 \(url.path)' and retry")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            return SimulatedFleet()
        } catch {
            guard FileManager.default.fileExists(atPath: url.path) else { return SimulatedFleet() }
            throw SimulatedFleetPersistenceError(path: url.path, reason: "cannot be read: \(error)")
        }
        do {
            return SimulatedFleet(state: try JSONDecoder().decode(SimulatedFleetState.self, from: data))
        } catch {
            throw SimulatedFleetPersistenceError(
                path: url.path, reason: "is not a simulated fleet (\(error)); move it away to start empty"
            )
        }
    }

    /// Saves the fleet as JSON, atomically: a 0600 temporary file beside `url`, flushed, then
    /// renamed over it. The file holds key fingerprints, never keys.
    public func save(to url: URL) throws {
        try state.save(to: url)
    }
}

extension SimulatedFleetState {
    /// Saves the state as `SimulatedFleet.save(to:)` does, for code that holds the state itself
    /// (an operation observer, which runs under the fleet's lock and must not call back into it).
    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(self)
        let path = url.path
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw SimulatedFleetPersistenceError(
                path: temporary, reason: "cannot be created: \(String(cString: strerror(errno)))")
        }
        var failure: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let written = write(descriptor, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = "cannot be written: \(String(cString: strerror(errno)))"
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(descriptor) != 0 {
            failure = "cannot be flushed: \(String(cString: strerror(errno)))"
        }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 {
            failure = "cannot replace \(path): \(String(cString: strerror(errno)))"
        }
        if let failure {
            unlink(temporary)
            throw SimulatedFleetPersistenceError(path: path, reason: failure)
        }
    }
}
