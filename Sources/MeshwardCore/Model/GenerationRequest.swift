/// What the planner asks the Store for, and what `GenerationStore.issueGenerations(_:now:)`
/// needs to issue one new generation: planning and the Store both speak it.
public struct GenerationRequest: Sendable, Hashable {
    public var channel: ChannelID
    public var cipher: Cipher
    /// The sender's address; same family as `channel`.
    public var source: IPAddress
    /// The receiver's address; same family as `channel`. SPIs are unique per destination.
    public var destination: IPAddress
    /// Foreign SPIs observed on `destination`: the new SPI is none of them.
    public var avoiding: Set<SPI>

    public init(channel: ChannelID, cipher: Cipher, source: IPAddress, destination: IPAddress, avoiding: Set<SPI> = [])
    {
        self.channel = channel
        self.cipher = cipher
        self.source = source
        self.destination = destination
        self.avoiding = avoiding
    }
}
