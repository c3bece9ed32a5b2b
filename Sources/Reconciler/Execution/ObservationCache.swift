import Kernel

/// The controller's cache of its nodes' kernels, kept by their watch streams (design.md §12):
/// the cache decides whether a pass has work; acting needs fresh facts.
///
/// A pass that plans on the cache reads afresh every node its plan would touch, and every peer
/// of those, before it writes or sends anything (`FleetReconciler.preparePass`).
public protocol ObservationCache: Sendable {
    /// A reading of `node` made from the cache, when its watch is live, its copy current and
    /// not waiting for a batch's changes; nil otherwise, and the pass reads the node afresh.
    func cachedObservation(of node: String) -> NodeObservation?

    /// Takes in a fresh reading of `node`: it anchors the node's copy and gives it the counters,
    /// statistics and foreign SPIs that a watch does not carry.
    func adopt(_ observation: NodeObservation, of node: String)

    /// Notes that a batch is about to be sent to `node`: until its answer (`applied(to:at:)`),
    /// the cache does not stand for the node, and the changes it sees there are the batch's.
    func sending(to node: String)

    /// Notes that `node` answered a batch at `position` (nil: a kernel that reports none): the
    /// cache stands for the node again once its copy has reached that position.
    func applied(to node: String, at position: WatchPosition?)
}
