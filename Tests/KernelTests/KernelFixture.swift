import Kernel
import MeshwardCore
import Testing

/// A kernel backend the behavioural suite runs against: it makes empty nodes and hands out a
/// `NodeKernel` for any node and reqid. Foreign objects are installed through a kernel of
/// another reqid, so every backend needs nothing more.
///
/// Conformers: `SimulatedKernelFixture`; a netlink conformer (network namespaces on this
/// machine, policies only) joins through `KernelBackend`.
protocol KernelFixture: Sendable {
    /// False for a kernel that cannot hold SAs (this machine's kernel has XFRM but no ESP).
    var supportsSAs: Bool { get }

    /// Creates an empty node named `name` (unique within the fixture).
    func makeNode(_ name: String, addresses: [IPAddress]) async throws

    /// `node`'s kernel as the owner of `reqid` sees it.
    func kernel(for node: String, reqid: Reqid) -> any NodeKernel

    /// Removes every node the fixture made.
    func tearDown() async
}

extension KernelFixture {
    /// Makes a node and returns its kernel for Meshward's reqid.
    func makeOwnedNode(_ name: String, addresses: [IPAddress] = [TestValues.alpha]) async throws -> any NodeKernel {
        try await makeNode(name, addresses: addresses)
        return kernel(for: name, reqid: TestValues.ownReqid)
    }

    /// Installs `operations` as another owner (reqid `TestValues.foreignReqid`); every one must apply.
    func installForeign(_ operations: [KernelOperation], on node: String) async throws {
        let results = try await kernel(for: node, reqid: TestValues.foreignReqid).apply(operations)
        for result in results where result.outcome != .applied {
            throw FixtureError(message: "foreign \(result.operation) on \(node): \(result.outcome)")
        }
    }
}

/// A fixture could not set a node up.
struct FixtureError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The backends the behavioural suite runs against. A backend joins by adding a case.
enum KernelBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case simulated

    var testDescription: String { rawValue }

    func makeFixture() async throws -> any KernelFixture {
        switch self {
        case .simulated: SimulatedKernelFixture()
        }
    }

    /// Whether the backend holds SAs, known before a fixture is made (for argument lists).
    var supportsSAs: Bool {
        switch self {
        case .simulated: true
        }
    }

    /// The backends that can hold SAs.
    static var withSAs: [KernelBackend] { allCases.filter(\.supportsSAs) }
}
