import Foundation
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Kernel

#if canImport(Glibc)
import Glibc
#endif

/// The netlink backend against this machine's kernel, each test in a throwaway network
/// namespace. This kernel has XFRM but no ESP: policies install, SAs do not (the real-kernel
/// suite covers SAs).
@Suite(
    "NetlinkKernel in a network namespace", .serialized,
    .enabled(TestNamespace.skipReason) { await TestNamespace.isPermitted() })
struct NetlinkNamespaceTests {
    let foreignLine = "src 198.18.9.9/32 dst 198.18.0.1/32 dir in tmpl proto esp reqid 7 mode transport"

    private func kernel(_ namespace: TestNamespace) throws -> NetlinkKernel {
        try NetlinkKernel(
            node: "node-a", endpoint: .namespace(namespace.name), reqid: Fixtures.reqid, logger: Fixtures.logger)
    }

    private func expectAllApplied(_ results: [OperationResult], sourceLocation: SourceLocation = #_sourceLocation) {
        let failures = results.filter { !$0.outcome.isApplied }
        #expect(
            failures.isEmpty, "\(failures.prefix(3).map { "\($0.operation): \($0.outcome)" })",
            sourceLocation: sourceLocation)
    }

    /// The kernel's policies as `ip xfrm policy` prints them.
    private func kernelPolicies(_ namespace: TestNamespace) async throws -> [IPRoutePolicy] {
        IPRoutePolicy.parse(try await namespace.ip("xfrm", "policy"))
    }

    @Test("install, dump, update and delete policies; the kernel holds exactly what was written")
    func policyLifecycle() async throws {
        try await TestNamespace.with { namespace in
            try await namespace.ip(
                "xfrm", "policy", "add", "src", "198.18.9.9/32", "dst", "198.18.0.1/32", "dir", "in",
                "tmpl", "proto", "esp", "reqid", "7", "mode", "transport")
            let kernel = try kernel(namespace)
            let outbound4 = Fixtures.policy(.ipv4, 1, spi: SPI(0x1001))
            let inbound4 = Fixtures.policy(.ipv4, 1, direction: .inbound, optional: true)
            let outbound6 = Fixtures.policy(
                .ipv6, 2, spi: SPI(0x2002), traffic: TrafficMatch(transport: .tcp, destinationPort: 8080))
            let inbound6 = Fixtures.policy(
                .ipv6, 2, direction: .inbound, optional: true,
                traffic: TrafficMatch(transport: .tcp, sourcePort: 8080))
            let written = [outbound4, inbound4, outbound6, inbound6]

            let initial = try await kernel.observe()
            #expect(initial.policies.isEmpty, "the foreign policy must not be reported")
            expectAllApplied(try await kernel.apply(written.map { .addPolicy($0) }))

            var observed = try await kernel.observe()
            #expect(Set(observed.policies) == Set(written))
            #expect(observed.securityAssociations.isEmpty)
            let foreign = IPRoutePolicy(
                selector: "src 198.18.9.9/32 dst 198.18.0.1/32", direction: "in", priority: "0",
                spi: nil, reqid: "7", optional: false)
            #expect(Set(try await kernelPolicies(namespace)) == Set(written.map(IPRoutePolicy.init) + [foreign]))
            #expect(try await kernelPolicies(namespace).count == 5)

            // The switch of a rekey and the enforcement step: pin a new SPI, make inbound required.
            var switched = outbound4
            switched.template.spi = SPI(0x1003)
            var enforced = inbound4
            enforced.template.isOptional = false
            expectAllApplied(try await kernel.apply([.updatePolicy(switched), .updatePolicy(enforced)]))
            observed = try await kernel.observe()
            #expect(Set(observed.policies) == Set([switched, enforced, outbound6, inbound6]))
            #expect(
                Set(try await kernelPolicies(namespace))
                    == Set([switched, enforced, outbound6, inbound6].map(IPRoutePolicy.init) + [foreign]))

            expectAllApplied(try await kernel.apply(observed.policies.map { .deletePolicy($0.identifier) }))
            #expect(try await kernel.observe().policies.isEmpty)
            // Only the foreign policy is left, untouched.
            #expect(try await kernelPolicies(namespace) == [foreign])
        }
    }

    @Test("a foreign policy is never reported, deleted or replaced")
    func foreignPolicySurvives() async throws {
        try await TestNamespace.with { namespace in
            try await namespace.ip(
                "xfrm", "policy", "add", "src", "198.18.9.9/32", "dst", "198.18.0.1/32", "dir", "in",
                "tmpl", "proto", "esp", "reqid", "7", "mode", "transport")
            let before = try await namespace.ip("xfrm", "policy")
            let kernel = try kernel(namespace)
            let foreignSelector = PolicySelector(
                source: IPPrefix(host: Fixtures.address("198.18.9.9")),
                destination: IPPrefix(host: Fixtures.address("198.18.0.1")))
            let foreignID = PolicyIdentifier(selector: foreignSelector, direction: .inbound)
            let takeover = SecurityPolicy(
                selector: foreignSelector, direction: .inbound,
                template: PolicyTemplate(family: .ipv4, spi: nil, reqid: Fixtures.reqid, isOptional: true))
            var otherReqid = Fixtures.policy(.ipv4, 5)
            otherReqid.template.reqid = Reqid(7)
            let results = try await kernel.apply([
                .deletePolicy(foreignID), .updatePolicy(takeover), .addPolicy(otherReqid), .updatePolicy(otherReqid),
                .deleteSA(SAIdentifier(destination: Fixtures.address("198.18.0.1"), spi: SPI(0x999))),
                .addPolicy(takeover),
            ])
            // From the owner's view the foreign objects do not exist: deletes fail as for missing
            // objects, an update of the foreign selector as NEWPOLICY would, writes of another
            // reqid are refused; none of these reaches the kernel, and NEWPOLICY is exclusive.
            let errnos = results.map { result -> Int32? in
                if case .failed(let errno, _) = result.outcome { return errno }
                return nil
            }
            #expect(errnos == [ENOENT, EEXIST, EPERM, EPERM, ESRCH, EEXIST], "\(results.map(\.outcome))")
            #expect(try await namespace.ip("xfrm", "policy") == before)
            #expect(try await kernel.observe().policies.isEmpty)
        }
    }

    @Test("NEWSA fails per operation on a kernel without ESP, and later operations still apply")
    func saUnsupportedIsPerOperation() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let policy = Fixtures.policy(.ipv4, 1)
            let results = try await kernel.apply([
                .addSA(Fixtures.sa(.ipv4, cipher: .aesGCM256)), .addPolicy(policy),
                .addSA(Fixtures.sa(.ipv6, cipher: .aesCBCHMACSHA256)),
            ])
            #expect(results.count == 3)
            guard case .failed(let errno, _) = results[0].outcome else {
                Issue.record("NEWSA did not fail: \(results[0].outcome)")
                return
            }
            #expect(errno != 0)
            #expect(results[1].outcome == .applied)
            if case .failed = results[2].outcome {} else { Issue.record("NEWSA did not fail: \(results[2].outcome)") }
            #expect(try await kernel.observe().policies == [policy])
        }
    }

    @Test("an add and a delete of the same policy in one batch both apply, in order")
    func addThenDeleteInOneBatch() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let policy = Fixtures.policy(.ipv6, 1)
            let results = try await kernel.apply([
                .addPolicy(policy), .deletePolicy(policy.identifier), .addPolicy(policy),
            ])
            #expect(results.map(\.outcome) == [.applied, .applied, .applied])
            #expect(try await kernel.observe().policies == [policy])
        }
    }

    @Test("kernel refusals carry the errno and the kernel's text")
    func kernelRefusals() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let policy = Fixtures.policy(.ipv4, 1)
            _ = try await kernel.apply([.addPolicy(policy)])
            let results = try await kernel.apply([
                .addPolicy(policy), .deletePolicy(policy.identifier), .deletePolicy(policy.identifier),
            ])
            guard case .failed(let errno, _) = results[0].outcome else {
                Issue.record("duplicate NEWPOLICY did not fail")
                return
            }
            #expect(errno == EEXIST)
            #expect(results[1].outcome == .applied)
            // The second delete is answered before it reaches the kernel: once the first is
            // acknowledged, the policy is gone, and nothing else at that selector is Meshward's.
            if case .failed(ENOENT, _) = results[2].outcome {} else { Issue.record("\(results[2].outcome)") }
        }
    }

    @Test("an update never replaces a foreign policy that appeared after the last observation")
    func foreignPolicyAfterObservation() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            #expect(try await kernel.observe().policies.isEmpty)
            try await namespace.ip(
                "xfrm", "policy", "add", "src", "198.18.9.9/32", "dst", "198.18.0.1/32", "dir", "in",
                "tmpl", "proto", "esp", "reqid", "7", "mode", "transport")
            let before = try await namespace.ip("xfrm", "policy")
            let selector = PolicySelector(
                source: IPPrefix(host: Fixtures.address("198.18.9.9")),
                destination: IPPrefix(host: Fixtures.address("198.18.0.1")))
            let takeover = SecurityPolicy(
                selector: selector, direction: .inbound,
                template: PolicyTemplate(family: .ipv4, spi: nil, reqid: Fixtures.reqid, isOptional: true))
            let results = try await kernel.apply([.updatePolicy(takeover), .deletePolicy(takeover.identifier)])
            guard case .failed(EEXIST, _) = results[0].outcome else {
                Issue.record("the update was not refused: \(results[0].outcome)")
                return
            }
            if case .failed(ENOENT, _) = results[1].outcome {} else { Issue.record("\(results[1].outcome)") }
            #expect(try await namespace.ip("xfrm", "policy") == before)
        }
    }

    @Test("thousands of operations travel in batches and are all acknowledged")
    func largeBatch() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let policies = (0..<3000).map { Fixtures.policy($0 % 2 == 0 ? .ipv4 : .ipv6, $0) }
            let results = try await kernel.apply(policies.map { .addPolicy($0) })
            expectAllApplied(results)
            #expect(results.map(\.operation) == policies.map { .addPolicy($0) })
            let observed = try await kernel.observe()
            #expect(observed.policies.count == 3000)
            #expect(try await namespace.ip("xfrm", "policy", "count").contains("3000"))
            expectAllApplied(try await kernel.apply(observed.policies.map { .deletePolicy($0.identifier) }))
            #expect(try await kernel.observe().policies.isEmpty)
        }
    }

    @Test("the namespace endpoint lands in the namespace, and statistics are that namespace's")
    func namespaceIsolation() async throws {
        try await TestNamespace.with { first in
            try await TestNamespace.with { second in
                let kernel = try kernel(first)
                let policy = Fixtures.policy(.ipv4, 7)
                expectAllApplied(try await kernel.apply([.addPolicy(policy)]))
                #expect(try await first.ip("xfrm", "policy").contains("198.18.0.9/32"))
                #expect(!(try await second.ip("xfrm", "policy").contains("198.18.0.9/32")))
                let observer = try NetlinkKernel(
                    node: "node-b", endpoint: .namespace(second.name), reqid: Fixtures.reqid,
                    logger: Fixtures.logger)
                #expect(try await observer.observe().policies.isEmpty)
                let statistics = try await kernel.observe().statistics
                #expect(statistics["XfrmInNoStates"] != nil)
                #expect(statistics == XfrmStatistics.parse(try await first.statisticsText()))
            }
        }
    }

    @Test("endpoints the backend cannot serve are reported, not crashed on")
    func badEndpoints() {
        #expect(throws: KernelError.self) {
            try NetlinkKernel(node: "n", endpoint: .sim, reqid: Fixtures.reqid, logger: Fixtures.logger)
        }
        #expect(throws: KernelError.self) {
            try NetlinkKernel(
                node: "n", endpoint: .namespace("mwtest-missing-\(UInt32.random(in: 0...UInt32.max))"),
                reqid: Fixtures.reqid, logger: Fixtures.logger)
        }
    }
}
