import COpenSSL
import MeshwardCore

extension FleetIntent {
    /// SHA-256 over a canonical, length-prefixed serialization of the intent.
    ///
    /// Every string is written as its UTF-8 length and bytes, every collection as its count and
    /// elements in their sorted order, so no two different intents serialize alike. Labels are
    /// written sorted by key. The serialization is streamed into the digest, never built whole.
    /// The certificate lifetime is written only when it is not the default, so that a spec that
    /// does not set it keeps the revision it had before the setting existed.
    static func revision(
        cluster: String, reqid: UInt32, nodes: [NodeIntent], channels: [ChannelIntent],
        flowCount: Int, certificateLifetime: Duration
    ) -> String {
        var writer = CanonicalDigest()
        writer.string("meshward-intent/1")
        writer.string(cluster)
        writer.integer(UInt64(reqid))
        writer.integer(UInt64(flowCount))
        writer.integer(UInt64(nodes.count))
        for node in nodes {
            writer.string(node.name)
            writer.integer(UInt64(node.addresses.count))
            for address in node.addresses { writer.address(address) }
            writer.integer(UInt64(node.labels.count))
            for key in node.labels.keys.sorted() {
                writer.string(key)
                writer.string(node.labels[key] ?? "")
            }
            writer.string(node.endpoint.description)
        }
        writer.integer(UInt64(channels.count))
        channels.withUnsafeBufferPointer { channels in
            for index in channels.indices {
                writer.string(channels[index].id.from)
                writer.string(channels[index].id.to)
                writer.string(channels[index].id.family.rawValue)
                writer.address(channels[index].source)
                writer.address(channels[index].destination)
                writer.integer(UInt64(channels[index].traffic.count))
                for match in channels[index].traffic {
                    writer.integer(UInt64(match.transport?.number ?? 255))
                    writer.integer(UInt64(match.sourcePort.map { Int($0) + 1 } ?? 0))
                    writer.integer(UInt64(match.destinationPort.map { Int($0) + 1 } ?? 0))
                }
                writer.string(channels[index].cipher.rawValue)
                writer.duration(channels[index].rekey.every)
                writer.integer(channels[index].rekey.packets == nil ? 0 : 1)
                if let packets = channels[index].rekey.packets { writer.integer(packets) }
                writer.duration(channels[index].drain)
                writer.string(channels[index].enforcement.rawValue)
                writer.integer(UInt64(channels[index].flows.count))
                for flow in channels[index].flows { writer.string(flow) }
            }
        }
        if certificateLifetime != FleetIntent.defaultCertificateLifetime {
            writer.string("certificates.lifetime")
            writer.duration(certificateLifetime)
        }
        return writer.finish()
    }
}

/// A SHA-256 digest fed through a fixed buffer, so large serializations are hashed in chunks.
///
/// Integers are written as LEB128 varints and strings as a varint length and their UTF-8 bytes.
private struct CanonicalDigest {
    private static let capacity = 1 << 16
    private let buffer: UnsafeMutablePointer<UInt8>
    private var count = 0
    private let context: OpaquePointer?

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
        buffer = .allocate(capacity: Self.capacity)
    }

    mutating func integer(_ value: UInt64) {
        if count > Self.capacity - 10 { flush() }
        var rest = value
        while rest >= 0x80 {
            buffer[count] = UInt8(truncatingIfNeeded: rest) | 0x80
            count += 1
            rest >>= 7
        }
        buffer[count] = UInt8(rest)
        count += 1
    }

    mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { bytes in
            integer(UInt64(bytes.count))
            append(bytes)
        }
    }

    mutating func address(_ address: IPAddress) {
        address.withNetworkOrderBytes { bytes in
            integer(UInt64(bytes.count))
            append(bytes.assumingMemoryBound(to: UInt8.self))
        }
    }

    mutating func duration(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        integer(UInt64(bitPattern: seconds))
        integer(UInt64(bitPattern: attoseconds))
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        if count + bytes.count > Self.capacity { flush() }
        if bytes.count > Self.capacity {
            _ = EVP_DigestUpdate(context, base, bytes.count)
            return
        }
        (buffer + count).update(from: base, count: bytes.count)
        count += bytes.count
    }

    private mutating func flush() {
        _ = EVP_DigestUpdate(context, buffer, count)
        count = 0
    }

    mutating func finish() -> String {
        flush()
        buffer.deallocate()
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        EVP_MD_CTX_free(context)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest.prefix(Int(length)) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
