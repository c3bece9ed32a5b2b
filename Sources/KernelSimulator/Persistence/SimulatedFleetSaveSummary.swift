/// What one save of a simulated fleet wrote to its file.
public struct SimulatedFleetSaveSummary: Sendable, Hashable {
    /// True when every node was written: the file held no state this process knew (it is new,
    /// another file, or someone else wrote it since).
    public let rewroteEverything: Bool
    /// The nodes whose rows were written, sorted by name.
    public let writtenNodes: [String]
    /// The nodes whose rows were deleted (they left the fleet since the last save), sorted.
    public let removedNodes: [String]
}
