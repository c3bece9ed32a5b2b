import Kernel

/// One reading of a fleet's nodes: each answering node's kernel, why the others did not answer,
/// and which of those wait for enrollment (`FleetReconciler.observe`).
public struct FleetObservation: Sendable {
    public var observations: [String: NodeObservation]
    /// Node -> why it did not answer.
    public var unreachable: [String: String]
    /// The unreachable nodes whose agent waits for enrollment.
    public var enrolling: Set<String>

    public init(
        observations: [String: NodeObservation], unreachable: [String: String], enrolling: Set<String> = []
    ) {
        self.observations = observations
        self.unreachable = unreachable
        self.enrolling = enrolling
    }

    /// The nodes this reading settles for a pass that reuses it: every node read or found
    /// unreachable, except those waiting for enrollment (a run that enrolls reads them again).
    var settled: Set<String> {
        Set(observations.keys).union(unreachable.keys).subtracting(enrolling)
    }
}
