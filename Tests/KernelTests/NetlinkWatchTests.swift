import Foundation
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Kernel

/// The netlink watch against this machine's kernel, each test in a throwaway network
/// namespace. This kernel has XFRM but no ESP, so the watch is exercised with policies (the
/// real-kernel suite covers SAs).
@Suite(
    "NetlinkKernel's watch in a network namespace", .serialized,
    .enabled(TestNamespace.skipReason) { await TestNamespace.isPermitted() })
struct NetlinkWatchTests {
    private func kernel(_ namespace: TestNamespace) throws -> NetlinkKernel {
        try NetlinkKernel(
            node: "node-a", endpoint: .namespace(namespace.name), reqid: Fixtures.reqid, logger: Fixtures.logger)
    }

    /// The changes of `messages`, without their seqs.
    private func changes(_ messages: [WatchMessage]) -> [KernelChange] {
        messages.compactMap { message in
            if case .change(_, let change) = message { change } else { nil }
        }
    }

    /// `ip xfrm policy` arguments of policy `index` (outbound, 198.18.0.1 -> 198.18.x.y), with `reqid`.
    private func policyArguments(_ index: Int, reqid: UInt32) -> [String] {
        let destination = Fixtures.host(.ipv4, index + 1)
        return [
            "src", "198.18.0.1/32", "dst", "\(destination)/32", "dir", "out", "tmpl", "proto", "esp", "reqid",
            "\(reqid)", "mode", "transport",
        ]
    }

    @Test("a policy added and deleted through Meshward is seen as an upsert, then a deletion, with consecutive seqs")
    func addAndDeleteAreSeen() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let model = try await kernel.startWatching()
            let stream = try #require(kernel.watch(from: model.position))
            let policy = Fixtures.policy(.ipv4, 1, spi: SPI(0x1001))
            #expect(try await kernel.apply([.addPolicy(policy)]).allSatisfy(\.outcome.isApplied))
            #expect(try await kernel.apply([.deletePolicy(policy.identifier)]).allSatisfy(\.outcome.isApplied))
            let messages = try await stream.first(2)
            #expect(changes(messages) == [.policy(policy), .policyDeleted(policy.identifier)])
            #expect(
                messages.map { message -> UInt64 in if case .change(let seq, _) = message { seq } else { 0 } } == [
                    1, 2,
                ])
            await kernel.close()
        }
    }

    @Test("a policy deleted by hand, out of band, is seen; a foreign policy never is")
    func outOfBandDeletionIsSeenAndForeignNever() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let owned = [1, 2].map { Fixtures.policy(.ipv4, $0, spi: SPI(0x1000 + UInt32($0))) }
            _ = try await kernel.apply(owned.map { .addPolicy($0) })
            let model = try await kernel.startWatching()
            #expect(model.objects.count == 2)
            let stream = try #require(kernel.watch(from: model.position))
            // Foreign: added, replaced and deleted by hand, before the owned deletion.
            try await namespace.ip(["xfrm", "policy", "add"] + policyArguments(40, reqid: 7))
            try await namespace.ip(["xfrm", "policy", "update"] + policyArguments(40, reqid: 8))
            try await namespace.ip([
                "xfrm", "policy", "delete", "src", "198.18.0.1/32", "dst", "198.18.0.42/32", "dir", "out",
            ])
            let selector = owned[0].selector
            try await namespace.ip(
                "xfrm", "policy", "delete", "src", "\(selector.source)", "dst", "\(selector.destination)", "dir", "out")
            #expect(changes(try await stream.first(1)) == [.policyDeleted(owned[0].identifier)])
            #expect(model.objects.policies.keys.sorted() == [owned[1].identifier])
            await kernel.close()
        }
    }

    @Test("`ip xfrm policy flush` is seen as the deletion of every owned policy")
    func flushIsSeenAsDeletions() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            try await namespace.ip(["xfrm", "policy", "add"] + policyArguments(40, reqid: 7))
            let owned = (1...3).map { Fixtures.policy(.ipv4, $0, spi: SPI(0x1000 + UInt32($0))) }
            _ = try await kernel.apply(owned.map { .addPolicy($0) })
            let model = try await kernel.startWatching()
            let stream = try #require(kernel.watch(from: model.position))
            try await namespace.ip("xfrm", "policy", "flush")
            let deleted = changes(try await stream.first(3))
            #expect(deleted == owned.map(\.identifier).sorted().map { .policyDeleted($0) })
            #expect(model.objects.count == 0)
            #expect(model.resynchronizations.lostEvents == 0)
            await kernel.close()
        }
    }

    @Test("events lost to a full receive queue (ENOBUFS) end in a model equal to a fresh dump, the recovery counted")
    func lostEventsAreRecovered() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            // The smallest queue the kernel allows, and a reader held off while 300 changes
            // arrive: the queue overflows for certain.
            let model = try await kernel.startWatching(receiveBufferBytes: 1)
            let stream = try #require(kernel.watch(from: model.position))
            let count = 300
            let lines = (1...count).map { index in
                (["xfrm", "policy", "add"] + policyArguments(index, reqid: Fixtures.reqid.rawValue))
                    .joined(separator: " ")
            }
            let watch = try #require(kernel.currentWatch)
            try watch.events.withLock { _ in try Self.runBlocking(namespace: namespace.name, batch: lines) }

            var copy = WatchedObjects()
            for change in changes(try await stream.first(count, within: .seconds(60))) { copy.apply(change) }
            let fresh = try await self.kernel(namespace).observe()
            #expect(fresh.policies.count == count)
            #expect(copy == WatchedObjects(securityAssociations: fresh.securityAssociations, policies: fresh.policies))
            #expect(model.objects == copy)
            #expect(model.resynchronizations.lostEvents >= 1)
            await kernel.close()
        }
    }

    @Test("closing the kernel ends its watch streams")
    func closeEndsTheStreams() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let model = try await kernel.startWatching()
            let stream = try #require(kernel.watch(from: model.position))
            await kernel.close()
            let ended = try await stream.untilEnd()
            #expect(ended.ending as? KernelWatchError == .stopped(node: "node-a", reason: "the kernel was closed"))
            #expect(kernel.watch(from: nil) == nil)
        }
    }

    @Test(
        "a watch whose reader stopped ends every stream asked of it at once, and the next startWatching() starts a new model (a new epoch) that follows the kernel again"
    )
    func stoppedWatchIsStartedAnew() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            let first = try await kernel.startWatching()
            let watch = try #require(kernel.currentWatch)
            watch.stop(reason: "the reader failed")
            let late = try #require(kernel.watch(from: first.position))
            let ended = try await late.untilEnd()
            #expect(ended.ending as? KernelWatchError == .stopped(node: "node-a", reason: "the kernel's watch stopped"))

            let second = try await kernel.startWatching()
            #expect(second.epoch != first.epoch)
            let stream = try #require(kernel.watch(from: second.position))
            let policy = Fixtures.policy(.ipv4, 1, spi: SPI(0x1001))
            #expect(try await kernel.apply([.addPolicy(policy)]).allSatisfy(\.outcome.isApplied))
            #expect(changes(try await stream.first(1)) == [.policy(policy)])
            await kernel.close()
        }
    }

    @Test("an observation and a batch of a watched kernel report the position their dump matched")
    func observationAndBatchReportThePosition() async throws {
        try await TestNamespace.with { namespace in
            let kernel = try kernel(namespace)
            #expect(try await kernel.observe().watchPosition == nil)
            let model = try await kernel.startWatching()
            let policies = (1...3).map { Fixtures.policy(.ipv4, $0, spi: SPI(0x1000 + UInt32($0))) }
            let batch = try await kernel.applyReportingPosition(
                policies.map { .addPolicy($0) }, deadline: .now + .seconds(10))
            let position = try #require(batch.position)
            #expect(position.epoch == model.epoch && position.seq >= 3)
            let observation = try await kernel.observe()
            #expect(observation.watchPosition == model.position)
            #expect(Set(observation.policies) == Set(policies))
            await kernel.close()
        }
    }

    /// `ip -n NAMESPACE -batch -` with `batch`, waited for on this thread (the caller holds a lock).
    private static func runBlocking(namespace: String, batch: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["-n", namespace, "-batch", "-"]
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data((batch.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestNamespace.CommandFailed(
                command: "ip -n \(namespace) -batch -", status: process.terminationStatus, output: "")
        }
    }
}
