import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// This process's open files: how many it holds, and its limit (`RLIMIT_NOFILE`).
///
/// Each agent the controller reaches holds one of its files (the connection); each agent costs
/// its child a listener and the connection it accepted. The benchmark raises its soft limit to
/// the hard one at startup, in the controller and in every child (the benchmark only; the
/// `meshward` commands leave the limit as they find it).
enum OpenFiles {
    /// The limit after `raiseLimit()`: `soft` (what the process may open now), `hard` (what no
    /// unprivileged change can go past), and the soft limit it had before when it was raised.
    struct Limit {
        var soft: UInt64
        var hard: UInt64
        var raisedFrom: UInt64?
    }

    /// Raises the soft open-file limit to the hard limit when it is lower, and returns the limit.
    /// Throws when the limit cannot be read or set.
    static func raiseLimit() throws -> Limit {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else {
            throw BenchFailure("cannot read the open-file limit: \(String(cString: strerror(errno)))")
        }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else {
            return Limit(soft: before, hard: UInt64(limit.rlim_max), raisedFrom: nil)
        }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(resource, &limit) == 0 else {
            throw BenchFailure(
                "cannot raise the open-file limit from \(before) to \(limit.rlim_max): "
                    + String(cString: strerror(errno)))
        }
        return Limit(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max), raisedFrom: before)
    }

    /// How many files this process holds open now (the entries of `/proc/self/fd`, less the one
    /// that reading it opens); nil where there is no `/proc`.
    static func count() -> Int? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return nil }
        return max(0, entries.count - 1)
    }
}
