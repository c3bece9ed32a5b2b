import MeshwardCore

/// Puts a channel's traffic matches in their canonical form.
enum TrafficSet {
    /// Sorted, without repeats, and without any match that another match of the list covers;
    /// `[.any]` when the list holds `.any`.
    static func normalize(_ matches: [TrafficMatch]) -> [TrafficMatch] {
        let unique = Array(Set(matches)).sorted()
        if unique.contains(.any) { return [.any] }
        return unique.filter { match in
            !unique.contains { other in other != match && match.isCovered(by: other) }
        }
    }
}
