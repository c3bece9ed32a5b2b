import Kernel
import MeshwardCore
import MeshwardTestSupport
import Testing

/// A kernel backend the behavioural suite runs against: it makes empty nodes and hands out a
/// `NodeKernel` for any node and reqid, and installs foreign objects the way another owner of
/// that backend would.
///
/// Conformers: `SimulatedKernelFixture` (in memory) and `NetlinkKernelFixture` (a throwaway
/// network namespace per node on this machine's kernel).
protocol KernelFixture: Sendable {
    /// Why this backend cannot hold SAs (a kernel without ESP), or nil when it can. SA cases
    /// are skipped with this reason rather than passed.
    var missingSASupport: String? { get }

    /// Creates an empty node named `name` (unique within the fixture).
    func makeNode(_ name: String, addresses: [IPAddress]) async throws

    /// `node`'s kernel as the owner of `reqid` sees it.
    func kernel(for node: String, reqid: Reqid) throws -> any NodeKernel

    /// Installs `operations` on `node` as another owner (reqid `TestValues.foreignReqid`)
    /// would; every one must apply.
    func installForeign(_ operations: [KernelOperation], on node: String) async throws

    /// Removes every node the fixture made.
    func tearDown() async
}

extension KernelFixture {
    /// Makes a node and returns its kernel for Meshward's reqid.
    func makeOwnedNode(_ name: String, addresses: [IPAddress] = [TestValues.alpha]) async throws -> any NodeKernel {
        try await makeNode(name, addresses: addresses)
        return try kernel(for: name, reqid: TestValues.ownReqid)
    }

    /// Installs the foreign objects through a kernel of the foreign reqid.
    func installForeign(_ operations: [KernelOperation], on node: String) async throws {
        let results = try await kernel(for: node, reqid: TestValues.foreignReqid).apply(operations)
        for result in results where result.outcome != .applied {
            throw FixtureError(message: "foreign \(result.operation) on \(node): \(result.outcome)")
        }
    }

    /// Skips the current test case when this backend cannot hold SAs. The reason is recorded
    /// as a warning first, because the console reports a cancelled test case as passed.
    func requireSASupport(sourceLocation: SourceLocation = #_sourceLocation) throws {
        if let missingSASupport {
            let reason = Comment(rawValue: "skipped: \(missingSASupport)")
            Issue.record(reason, severity: .warning, sourceLocation: sourceLocation)
            try Test.cancel(reason, sourceLocation: sourceLocation)
        }
    }
}

/// A fixture could not set a node up.
struct FixtureError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The backends the behavioural suite runs against. A backend joins by adding a case.
///
/// What a backend can do (SAs need a kernel with ESP) is found out when its fixture is made,
/// never assumed: the same test binary exercises every case on a kernel that has ESP.
enum KernelBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case simulated
    case netlink

    var testDescription: String { rawValue }

    /// Makes a fixture, runs `body` with it, and tears it down whatever happens. Skips the
    /// test case, with the reason, when the backend cannot run here at all.
    func withFixture(_ body: (any KernelFixture) async throws -> Void) async throws {
        let fixture: any KernelFixture
        switch self {
        case .simulated:
            fixture = SimulatedKernelFixture()
        case .netlink:
            guard await TestNamespace.isPermitted() else {
                Issue.record(TestNamespace.skipReason, severity: .warning)
                try Test.cancel(TestNamespace.skipReason)
            }
            fixture = await NetlinkKernelFixture.make()
        }
        do {
            try await body(fixture)
        } catch {
            await fixture.tearDown()
            throw error
        }
        await fixture.tearDown()
    }
}
