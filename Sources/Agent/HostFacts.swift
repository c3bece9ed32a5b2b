import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What the agent reports about its host beyond the kernel's databases.
public enum HostFacts {
    /// `/proc/sys/kernel/random/boot_id`: a new value on every boot. Falls back to a value made
    /// once per process when the file cannot be read, so a restart still looks like a new boot.
    public static let bootID: String = {
        if let data = FileManager.default.contents(atPath: "/proc/sys/kernel/random/boot_id") {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty { return text }
        }
        return UUID().uuidString.lowercased()
    }()
}

/// Tells systemd about the service's state through `$NOTIFY_SOCKET` (sd_notify), without
/// linking libsystemd. Does nothing when the variable is unset (not started by systemd).
public enum SystemdNotifier {
    /// Sends `READY=1`; returns whether a message was sent.
    @discardableResult
    public static func notifyReady() -> Bool { send("READY=1") }

    static func send(_ message: String) -> Bool {
        guard var path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        if path.hasPrefix("@") { path = "\0" + path.dropFirst() }
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let payload = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                payload.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, socketAddress, length) }
            }
        }
        return sent == payload.count
    }
}
