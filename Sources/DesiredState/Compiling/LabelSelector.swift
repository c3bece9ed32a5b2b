/// A flow's `from` or `to`: every listed label must match; the key `name` matches the node's name.
/// An empty selector matches every node.
struct LabelSelector: Sendable, Hashable {
    /// The required label values, by label key (including the special key `name`).
    let requirements: [String: String]

    /// True when `node` satisfies every requirement.
    func matches(name: String, labels: [String: String]) -> Bool {
        requirements.allSatisfy { key, value in
            key == "name" ? name == value : labels[key] == value
        }
    }

    /// `{tier: web, zone: a}`, keys sorted.
    var description: String {
        "{" + requirements.keys.sorted().map { "\($0): \(requirements[$0] ?? "")" }.joined(separator: ", ") + "}"
    }
}
