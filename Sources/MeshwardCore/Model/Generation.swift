import Foundation

/// The key material of one channel at one point in time: SPI, cipher, key and addresses.
///
/// Everything but the state and its timestamps is fixed when the store issues the generation:
/// the key and SPI are never changed or re-sealed. `key` prints as `<redacted>`, so a
/// generation can be logged or dumped without revealing it.
public struct Generation: Sendable, Hashable {
    /// The channel this generation keys.
    public let channel: ChannelID
    /// 1, 2, 3, ... per channel, in the order the store issued them.
    public let number: Int
    /// Unique for `destination` across every generation the store ever issued; at least 0x100.
    public let spi: SPI
    public let cipher: Cipher
    /// `cipher.keyLength` bytes from OpenSSL's CSPRNG.
    public let key: KeyMaterial
    /// The sender's address (the outbound SA's source).
    public let source: IPAddress
    /// The receiver's address: with the SPI, it names the SA in the receiver's kernel.
    public let destination: IPAddress
    /// When the store issued the generation.
    public let createdAt: Date
    public var state: GenerationState
    /// When the sender's policy switched to this generation.
    public var activatedAt: Date?
    /// When the sender switched away from this generation: the drain starts here.
    public var supersededAt: Date?
    /// When the generation's SAs were deleted from both kernels.
    public var retiredAt: Date?
    /// When the sender was first sent the policy that pins this generation (the switch). From
    /// then on the key material counts as used: the sender may have encrypted under it, so its
    /// SAs are never installed again (a lost one makes a new generation).
    public var switchSentAt: Date?
    /// While the generation drains: the receiver's inbound SA packet counter as last observed,
    /// and when. The inbound SA goes only once a later observation shows the same count.
    public var drainPackets: UInt64?
    public var drainPacketsAt: Date?

    /// Creates a generation value. Only the Store's `issueGenerations` makes new key material;
    /// this initializer exists for tests and for planning code that builds expected values.
    public init(
        channel: ChannelID, number: Int, spi: SPI, cipher: Cipher, key: KeyMaterial,
        source: IPAddress, destination: IPAddress, createdAt: Date, state: GenerationState,
        activatedAt: Date? = nil, supersededAt: Date? = nil, retiredAt: Date? = nil, switchSentAt: Date? = nil,
        drainPackets: UInt64? = nil, drainPacketsAt: Date? = nil
    ) {
        self.channel = channel
        self.number = number
        self.spi = spi
        self.cipher = cipher
        self.key = key
        self.source = source
        self.destination = destination
        self.createdAt = createdAt
        self.state = state
        self.activatedAt = activatedAt
        self.supersededAt = supersededAt
        self.retiredAt = retiredAt
        self.switchSentAt = switchSentAt
        self.drainPackets = drainPackets
        self.drainPacketsAt = drainPacketsAt
    }
}
