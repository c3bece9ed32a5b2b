import Kernel
import MeshwardCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One batch, the outcome expected for each operation (nil: applied; else the errno), and what
/// the owner observes afterwards.
struct BatchCase: Sendable, CustomTestStringConvertible {
    let name: String
    let operations: [KernelOperation]
    let errnos: [Int32?]
    let policies: Set<SecurityPolicy>
    let associations: Set<SecurityAssociation>

    init(
        _ name: String, _ operations: [KernelOperation], errnos: [Int32?],
        policies: Set<SecurityPolicy> = [], associations: Set<SecurityAssociation> = []
    ) {
        self.name = name
        self.operations = operations
        self.errnos = errnos
        self.policies = policies
        self.associations = associations
    }

    var testDescription: String { name }
}

/// An operation an owner attempts on a node that also holds foreign objects.
struct ForeignCase: Sendable, CustomTestStringConvertible {
    let name: String
    let operation: KernelOperation
    /// nil when the owner's operation itself should apply (it touches only owned objects);
    /// else the errno it fails with. To its owner a foreign object does not exist: a delete
    /// fails as for a missing object, an add or update on a taken selector or SPI fails EEXIST.
    let errno: Int32?

    var testDescription: String { name }
}

/// The behaviour every `NodeKernel` shares: the kernel's semantics for each operation, batches
/// that are not transactions, and ownership (only objects of the owner's reqid are observed or
/// touched).
@Suite("Kernel behaviour")
struct KernelBehaviourTests {
    typealias V = TestValues

    static let pinned = V.policy(spi: 0x100)
    static let repinned = V.policy(spi: 0x200)
    static let inbound = V.policy(.inbound, optional: true)
    static let narrower = V.policy(traffic: TrafficMatch(transport: .tcp, destinationPort: 8080), spi: 0x100)
    static let reprioritised = V.policy(spi: 0x100, priority: 10)

    static let policyCases: [BatchCase] = [
        BatchCase("NEWPOLICY on a free selector applies", [.addPolicy(pinned)], errnos: [nil], policies: [pinned]),
        BatchCase(
            "NEWPOLICY on a taken selector and direction fails EEXIST",
            [.addPolicy(pinned), .addPolicy(repinned)], errnos: [nil, EEXIST], policies: [pinned]),
        BatchCase(
            "the same selector in the other direction is another policy",
            [.addPolicy(pinned), .addPolicy(V.policy(.inbound, spi: nil))], errnos: [nil, nil],
            policies: [pinned, V.policy(.inbound, spi: nil)]),
        BatchCase(
            "a narrower selector is another policy",
            [.addPolicy(pinned), .addPolicy(narrower)], errnos: [nil, nil], policies: [pinned, narrower]),
        BatchCase("UPDPOLICY inserts a missing policy", [.updatePolicy(pinned)], errnos: [nil], policies: [pinned]),
        BatchCase(
            "UPDPOLICY replaces the template", [.addPolicy(pinned), .updatePolicy(repinned)],
            errnos: [nil, nil], policies: [repinned]),
        BatchCase(
            "UPDPOLICY replaces the priority", [.addPolicy(pinned), .updatePolicy(reprioritised)],
            errnos: [nil, nil], policies: [reprioritised]),
        BatchCase("DELPOLICY removes", [.addPolicy(pinned), .deletePolicy(pinned.identifier)], errnos: [nil, nil]),
        BatchCase("DELPOLICY on a missing policy fails ENOENT", [.deletePolicy(pinned.identifier)], errnos: [ENOENT]),
        BatchCase(
            "DELPOLICY names the direction", [.addPolicy(pinned), .deletePolicy(inbound.identifier)],
            errnos: [nil, ENOENT], policies: [pinned]),
        BatchCase(
            "a failed operation does not stop later ones",
            [.addPolicy(pinned), .addPolicy(pinned), .deletePolicy(narrower.identifier), .addPolicy(inbound)],
            errnos: [nil, EEXIST, ENOENT, nil], policies: [pinned, inbound]),
    ]

    static let first = V.fixedAssociation(spi: 0x100, keyByte: 1)
    static let sameSPIOtherKey = V.fixedAssociation(spi: 0x100, keyByte: 2)
    static let sameSPIOtherSource = V.fixedAssociation(from: V.charlie, spi: 0x100, keyByte: 3)
    static let sameSPIOtherDestination = V.fixedAssociation(from: V.bravo, to: V.alpha, spi: 0x100, keyByte: 4)
    static let second = V.fixedAssociation(spi: 0x200, keyByte: 5)

    static let associationCases: [BatchCase] = [
        BatchCase("NEWSA applies", [.addSA(first)], errnos: [nil], associations: [first]),
        BatchCase(
            "NEWSA on an existing destination and SPI fails EEXIST", [.addSA(first), .addSA(sameSPIOtherKey)],
            errnos: [nil, EEXIST], associations: [first]),
        BatchCase(
            "another source does not make another SA", [.addSA(first), .addSA(sameSPIOtherSource)],
            errnos: [nil, EEXIST], associations: [first]),
        BatchCase(
            "the same SPI to another destination is another SA",
            [.addSA(first), .addSA(sameSPIOtherDestination)], errnos: [nil, nil],
            associations: [first, sameSPIOtherDestination]),
        BatchCase("DELSA removes", [.addSA(first), .deleteSA(first.identifier)], errnos: [nil, nil]),
        BatchCase("DELSA on a missing SA fails ESRCH", [.deleteSA(first.identifier)], errnos: [ESRCH]),
        BatchCase(
            "an SPI deleted may be added again", [.addSA(first), .deleteSA(first.identifier), .addSA(sameSPIOtherKey)],
            errnos: [nil, nil, nil], associations: [sameSPIOtherKey]),
        BatchCase(
            "a failed SA operation does not stop later ones",
            [.addSA(first), .addSA(first), .deleteSA(second.identifier), .addSA(second)],
            errnos: [nil, EEXIST, ESRCH, nil], associations: [first, second]),
    ]

    @Test("a fresh node observes nothing owned", arguments: KernelBackend.allCases)
    func freshNodeObservesNothing(backend: KernelBackend) async throws {
        try await backend.withFixture { fixture in
            let kernel = try await fixture.makeOwnedNode("fresh")
            let observation = try await kernel.observe()
            #expect(observation.policies.isEmpty)
            #expect(observation.securityAssociations.isEmpty)
        }
    }

    @Test("policy operations", arguments: KernelBackend.allCases, policyCases)
    func policyOperations(backend: KernelBackend, batch: BatchCase) async throws {
        try await backend.withFixture { fixture in
            try await check(batch, on: fixture)
        }
    }

    @Test("SA operations", arguments: KernelBackend.allCases, associationCases)
    func associationOperations(backend: KernelBackend, batch: BatchCase) async throws {
        try await backend.withFixture { fixture in
            try fixture.requireSASupport()
            try await check(batch, on: fixture)
        }
    }

    private func check(_ batch: BatchCase, on fixture: any KernelFixture) async throws {
        let kernel = try await fixture.makeOwnedNode("node")
        let results = try await kernel.apply(batch.operations)
        #expect(results.map(\.operation) == batch.operations, "results come back in the batch's order")
        #expect(results.map(\.errno) == batch.errnos, "\(results.map(\.outcome))")
        let observation = try await kernel.observe()
        #expect(Set(observation.policies) == batch.policies)
        #expect(Set(observation.securityAssociations) == batch.associations)
    }

    static let writtenPolicies: [SecurityPolicy] = [
        V.policy(spi: 0x1234),
        V.policy(.inbound, optional: true),
        V.policy(.inbound, optional: false, priority: 7),
        V.policy(traffic: TrafficMatch(transport: .tcp, sourcePort: 8080), spi: 0x300),
        V.policy(traffic: TrafficMatch(transport: .udp, destinationPort: 53), spi: 0x301),
        V.policy(from: V.ipv6Alpha, to: V.ipv6Bravo, spi: 0x302),
    ]

    @Test("a policy is observed as written", arguments: KernelBackend.allCases, writtenPolicies)
    func policyObservedAsWritten(backend: KernelBackend, policy: SecurityPolicy) async throws {
        try await backend.withFixture { fixture in
            let kernel = try await fixture.makeOwnedNode("node")
            _ = try await kernel.apply([.addPolicy(policy)])
            let observed = try await kernel.observe().policies
            #expect(observed == [policy])
        }
    }

    static let writtenAssociations: [SecurityAssociation] =
        Cipher.allCases.enumerated().map { index, cipher in
            SecurityAssociation(
                source: V.alpha, destination: V.bravo, spi: SPI(0x400 + UInt32(index)), reqid: V.ownReqid,
                cipher: cipher,
                key: V.fixedKey(UInt8(index + 1), cipher: cipher)
            )
        } + [V.fixedAssociation(from: V.ipv6Alpha, to: V.ipv6Bravo, spi: 0x500)]

    @Test(
        "an SA is observed as written, with a matching key and zero counters",
        arguments: KernelBackend.allCases, writtenAssociations)
    func associationObservedAsWritten(backend: KernelBackend, association: SecurityAssociation) async throws {
        try await backend.withFixture { fixture in
            try fixture.requireSASupport()
            let kernel = try await fixture.makeOwnedNode("node")
            _ = try await kernel.apply([.addSA(association)])
            let observed = try await kernel.observe().securityAssociations
            #expect(observed == [association])
            #expect(observed.first?.key.fingerprint == association.key.fingerprint)
            #expect(observed.first?.counters.packets == 0)
        }
    }

    // MARK: Deadlines

    @Test(
        "a call whose deadline has already passed fails as unreachable and changes nothing",
        arguments: KernelBackend.allCases)
    func passedDeadline(backend: KernelBackend) async throws {
        try await backend.withFixture { fixture in
            let kernel = try await fixture.makeOwnedNode("node")
            let past = ContinuousClock.now - .seconds(1)
            await #expect(throws: KernelError.self) { _ = try await kernel.observe(deadline: past) }
            await #expect(throws: KernelError.self) {
                _ = try await kernel.apply([.addPolicy(Self.pinned)], deadline: past)
            }
            #expect(try await kernel.observe().policies.isEmpty)
        }
    }

    // MARK: Ownership

    static let foreignOutbound = V.policy(to: V.charlie, spi: 0x900, reqid: V.foreignReqid)
    static let foreignInbound = V.policy(.inbound, from: V.bravo, to: V.alpha, reqid: V.foreignReqid)
    static let foreignAssociation = V.fixedAssociation(to: V.charlie, spi: 0x900, keyByte: 9, reqid: V.foreignReqid)

    static let foreignPolicyCases: [ForeignCase] = [
        ForeignCase(name: "adding our own policy", operation: .addPolicy(pinned), errno: nil),
        ForeignCase(name: "updating our own policy", operation: .updatePolicy(pinned), errno: nil),
        ForeignCase(
            name: "adding on a foreign selector", operation: .addPolicy(V.policy(to: V.charlie, spi: 0x100)),
            errno: EEXIST),
        ForeignCase(
            name: "updating a foreign selector", operation: .updatePolicy(V.policy(to: V.charlie, spi: 0x100)),
            errno: EEXIST),
        ForeignCase(
            name: "deleting a foreign policy", operation: .deletePolicy(foreignOutbound.identifier),
            errno: ENOENT),
        ForeignCase(
            name: "deleting a foreign inbound policy", operation: .deletePolicy(foreignInbound.identifier),
            errno: ENOENT),
    ]

    static let foreignAssociationCases: [ForeignCase] = [
        ForeignCase(name: "adding our own SA", operation: .addSA(first), errno: nil),
        ForeignCase(
            name: "adding on a foreign SPI",
            operation: .addSA(V.fixedAssociation(to: V.charlie, spi: 0x900, keyByte: 1)), errno: EEXIST),
        ForeignCase(name: "deleting a foreign SA", operation: .deleteSA(foreignAssociation.identifier), errno: ESRCH),
    ]

    @Test(
        "only owned policies are observed, and foreign ones survive every operation",
        arguments: KernelBackend.allCases, foreignPolicyCases)
    func foreignPoliciesSurvive(backend: KernelBackend, attempt: ForeignCase) async throws {
        try await backend.withFixture { fixture in
            let kernel = try await fixture.makeOwnedNode("node")
            try await fixture.installForeign(
                [.addPolicy(Self.foreignOutbound), .addPolicy(Self.foreignInbound)], on: "node")
            #expect(try await kernel.observe().policies.isEmpty)

            let results = try await kernel.apply([attempt.operation])
            #expect(results.map(\.errno) == [attempt.errno], "\(results.map(\.outcome))")

            let foreign = try await fixture.kernel(for: "node", reqid: V.foreignReqid).observe()
            #expect(Set(foreign.policies) == [Self.foreignOutbound, Self.foreignInbound])
            #expect(try await kernel.observe().policies.allSatisfy { $0.template.reqid == V.ownReqid })
        }
    }

    @Test(
        "only owned SAs are observed, foreign SPIs are reported, and foreign SAs survive every operation",
        arguments: KernelBackend.allCases, foreignAssociationCases)
    func foreignAssociationsSurvive(backend: KernelBackend, attempt: ForeignCase) async throws {
        try await backend.withFixture { fixture in
            try fixture.requireSASupport()
            let kernel = try await fixture.makeOwnedNode("node")
            try await fixture.installForeign([.addSA(Self.foreignAssociation)], on: "node")
            let before = try await kernel.observe()
            #expect(before.securityAssociations.isEmpty)
            #expect(before.foreignSPIs == [Self.foreignAssociation.identifier])

            let results = try await kernel.apply([attempt.operation])
            #expect(results.map(\.errno) == [attempt.errno], "\(results.map(\.outcome))")

            let foreign = try await fixture.kernel(for: "node", reqid: V.foreignReqid).observe()
            #expect(foreign.securityAssociations == [Self.foreignAssociation])
        }
    }
}

extension OperationResult {
    /// nil when applied, the errno when failed, -1 when not attempted.
    fileprivate var errno: Int32? {
        switch outcome {
        case .applied: nil
        case .failed(let errno, _): errno
        case .notAttempted, .indeterminate: -1
        }
    }
}
