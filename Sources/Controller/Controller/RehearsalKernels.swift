import Kernel
import KernelSimulator
import MeshwardCore
import Reconciler
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kernels a plan is rehearsed on: every node's reading, with the rehearsed operations
/// laid over it, copy on write.
///
/// A node no operation has reached answers with its reading as it was taken (no copy: the
/// arrays are shared). The first batch sent to a node copies that node alone into a scratch
/// simulated kernel, which then takes every operation with the kernel's semantics (EEXIST,
/// ESRCH, a replaced policy's place) and answers the node's later readings. A steady plan
/// therefore copies no kernel, and a plan that changes a few nodes copies those few.
///
/// Each copied node is a simulated fleet of its own, behind its own lock: a pass sends every
/// node its batch in parallel, and the nodes of a rehearsal share nothing (no packets travel
/// between them), so one fleet-wide lock would only make the batches wait for each other.
///
/// What the scratch kernel cannot hold is kept from the reading: foreign SAs' identifiers (an
/// SA added over one fails with EEXIST, as the kernel would refuse it) and the statistics.
final class RehearsalKernels: FleetKernels {
    private let readings: [String: NodeObservation]
    private let unreachable: [String: String]
    private let addresses: [String: [IPAddress]]
    private let reqid: Reqid
    /// The scratch kernel of every node copied so far, each in a fleet of its own.
    private let copied = Mutex<[String: SimulatedKernel]>([:])

    /// - Parameters:
    ///   - readings: what each reachable node's kernel holds; the rehearsal starts from them.
    ///   - unreachable: why each node that could not be read cannot be reached; the rehearsal
    ///     cannot reach it either.
    ///   - addresses: each node's addresses, given to its scratch copy.
    init(
        readings: [String: NodeObservation], unreachable: [String: String], addresses: [String: [IPAddress]],
        reqid: Reqid
    ) {
        // A rehearsal has no agents and no watches: what a reading says of its source does
        // not carry over.
        self.readings = readings.mapValues { reading in
            var copy = reading
            copy.bootID = nil
            copy.agentCertificateExpiry = nil
            copy.watchPosition = nil
            return copy
        }
        self.unreachable = unreachable
        self.addresses = addresses
        self.reqid = reqid
    }

    var knownNodes: Set<String> { Set(readings.keys).union(unreachable.keys) }

    /// The nodes whose kernels the rehearsal has copied (those it sent operations to).
    var copiedNodes: Set<String> { copied.withLock { Set($0.keys) } }

    func kernel(for node: String) async throws -> any NodeKernel {
        if let reason = unreachable[node] { throw KernelError.unreachable(node: node, reason: reason) }
        guard let reading = readings[node] else {
            throw KernelError.unreachable(node: node, reason: "the plan has no reading of node \(node)")
        }
        return RehearsalKernel(node: node, reqid: reqid, reading: reading, kernels: self)
    }

    func persist() throws {}

    /// The scratch kernel of `node`, copied from `reading` on first use.
    fileprivate func scratchKernel(for node: String, reading: NodeObservation) -> SimulatedKernel {
        if let kernel = copied.withLock({ $0[node] }) { return kernel }
        // Copied outside the lock, so that other nodes' batches go on meanwhile; when two
        // calls copy one node at once, both use the copy kept first.
        var state = SimulatedFleetState()
        state.addNode(node, addresses: addresses[node] ?? [])
        for sa in reading.securityAssociations { _ = state.apply(.addSA(sa), on: node) }
        for policy in reading.policies { _ = state.apply(.addPolicy(policy), on: node) }
        let made = SimulatedFleet(state: state).kernel(for: node, reqid: reqid)
        return copied.withLock { copied in
            if let kept = copied[node] { return kept }
            copied[node] = made
            return made
        }
    }

    fileprivate func scratchKernel(ifCopied node: String) -> SimulatedKernel? { copied.withLock { $0[node] } }
}

/// One node of `RehearsalKernels`.
private struct RehearsalKernel: NodeKernel {
    let node: String
    let reqid: Reqid
    let reading: NodeObservation
    let kernels: RehearsalKernels

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        guard let scratch = kernels.scratchKernel(ifCopied: node) else { return reading }
        var observation = try await scratch.observe(deadline: deadline)
        observation.foreignSPIs = reading.foreignSPIs
        observation.statistics = reading.statistics
        return observation
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        let kernel = kernels.scratchKernel(for: node, reading: reading)
        func overForeign(_ operation: KernelOperation) -> Bool {
            guard case .addSA(let association) = operation else { return false }
            return reading.foreignSPIs.contains(association.identifier)
        }
        guard operations.contains(where: overForeign) else {
            return try await kernel.apply(operations, deadline: deadline)
        }
        var results: [OperationResult] = []
        results.reserveCapacity(operations.count)
        for operation in operations {
            if overForeign(operation) {
                results.append(OperationResult(operation: operation, outcome: .failed(errno: EEXIST, message: nil)))
            } else {
                results.append(contentsOf: try await kernel.apply([operation], deadline: deadline))
            }
        }
        return results
    }
}
