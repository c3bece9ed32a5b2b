import MeshwardCore

/// The associated data that binds a sealed key to the one row it belongs to.
///
/// It covers everything fixed about a generation: the channel (from, to, family), the generation
/// number, SPI, cipher and both addresses, each length-prefixed so that no two rows encode alike.
/// A sealed key copied to any other row therefore fails to open.
package enum SealingContext {
    private static let generationLabel = Array("meshward.generation-key.v1".utf8)
    private static let checkLabel = Array("meshward.master-key-check.v1".utf8)

    /// The associated data of a generation's key, written into `buffer` (cleared first) so that a
    /// bulk load reuses one allocation.
    package static func generation(
        _ channel: ChannelID, number: Int, spi: SPI, cipher: Cipher, source: IPAddress, destination: IPAddress,
        into buffer: inout [UInt8]
    ) {
        buffer.removeAll(keepingCapacity: true)
        append(generationLabel, to: &buffer)
        append(channel.from.utf8, to: &buffer)
        append(channel.to.utf8, to: &buffer)
        append(channel.family.rawValue.utf8, to: &buffer)
        withUnsafeBytes(of: UInt64(number).bigEndian) { buffer.append(contentsOf: $0) }
        withUnsafeBytes(of: spi.rawValue.bigEndian) { buffer.append(contentsOf: $0) }
        append(cipher.rawValue.utf8, to: &buffer)
        source.withNetworkOrderBytes { append($0, to: &buffer) }
        destination.withNetworkOrderBytes { append($0, to: &buffer) }
    }

    /// The associated data of the master key check: a known value sealed when the store is
    /// created, so that a wrong master key is told apart from a damaged row.
    package static var masterKeyCheck: [UInt8] { checkLabel }

    /// The associated data of a stored credential's private key: bound to its name, so a sealed
    /// key moved to another credential's row does not open.
    package static func credential(_ name: String) -> [UInt8] {
        Array("meshward.credential.v1".utf8) + [0] + Array(name.utf8)
    }

    /// The plaintext of the master key check.
    package static let masterKeyCheckPlaintext = [UInt8](repeating: 0, count: 32)

    private static func append(_ field: some Collection<UInt8>, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: UInt16(field.count).bigEndian) { buffer.append(contentsOf: $0) }
        buffer.append(contentsOf: field)
    }
}
