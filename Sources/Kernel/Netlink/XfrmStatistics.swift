#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `/proc/net/xfrm_stat`: one `Name value` pair per line (`XfrmInNoStates   3`).
enum XfrmStatistics {
    /// Parses the file's text; lines that are not a name and a number are skipped.
    static func parse(_ text: String) -> [String: UInt64] {
        var counters: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2, let value = UInt64(fields[1]) else { continue }
            counters[String(fields[0])] = value
        }
        return counters
    }

    /// Reads the file through `descriptor`, which was opened inside the node's namespace (the
    /// open file stays bound to that namespace), from the start. Empty when the descriptor is
    /// -1 (a kernel without `CONFIG_XFRM_STATISTICS`).
    static func read(descriptor: Int32) throws(NetlinkSocketError) -> [String: UInt64] {
        guard descriptor >= 0 else { return [:] }
        guard lseek(descriptor, 0, SEEK_SET) == 0 else { throw NetlinkSocketError("lseek xfrm_stat", errno: errno) }
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw NetlinkSocketError("read xfrm_stat", errno: errno)
            }
            if count == 0 { break }
            text.append(contentsOf: chunk[0..<count])
        }
        return parse(String(decoding: text, as: UTF8.self))
    }
}

private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
