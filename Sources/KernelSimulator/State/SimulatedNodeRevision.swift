/// Which version of a simulated node's databases a watch last saw: the node's instance (drawn
/// when the node is made, or loaded) and how many writes its databases have had since.
///
/// Two nodes compare equal whatever their revisions: it is bookkeeping for the fleet's watches,
/// not part of the kernel's state, and it is never persisted.
struct SimulatedNodeRevision: Sendable, Hashable {
    /// Tells apart a node removed and another of the same name added later.
    let instance = UInt64.random(in: 0...UInt64.max)
    /// Writes of the node's databases so far.
    var count: UInt64 = 0

    /// The revision as a value a watch keeps.
    var value: Mark { Mark(instance: instance, count: count) }

    /// A revision as seen at one instant.
    struct Mark: Sendable, Hashable {
        var instance: UInt64
        var count: UInt64
    }

    static func == (left: SimulatedNodeRevision, right: SimulatedNodeRevision) -> Bool { true }

    func hash(into hasher: inout Hasher) {}
}
