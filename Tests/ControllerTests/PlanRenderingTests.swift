import DesiredState
import Foundation
import Kernel
import Logging
import MeshwardCore
import Testing

@testable import Controller
@testable import MeshwardCommands
@testable import Reconciler

/// How a plan is rendered for people: placeholder SPIs named from each operation's own SPI,
/// counts in correct English.
@Suite("Plan rendering")
struct PlanRenderingTests {
    static let a = IPAddress("198.18.0.1")!
    static let b = IPAddress("198.18.0.2")!
    static let placeholder = SPI(0xFFFF_FFF0)
    static let real = SPI(0x0000_1234)

    static func sa(_ spi: SPI) -> SecurityAssociation {
        SecurityAssociation(
            source: a, destination: b, spi: spi, reqid: .meshwardDefault, cipher: .aesGCM256,
            key: .material(KeyMaterial(bytes: Array(repeating: 7, count: Cipher.aesGCM256.keyLength))))
    }

    static func policy(pinning spi: SPI?) -> SecurityPolicy {
        SecurityPolicy(
            selector: PolicySelector(source: IPPrefix(host: a), destination: IPPrefix(host: b)),
            direction: spi == nil ? .inbound : .outbound,
            template: PolicyTemplate(family: .ipv4, spi: spi, reqid: .meshwardDefault, isOptional: false))
    }

    /// `(case, operation, expected target part, text that must not appear)`.
    static let cases: [(String, KernelOperation, String, String?)] = [
        ("add-sa of a placeholder", .addSA(sa(placeholder)), "spi new-3", placeholder.hex),
        ("delete-sa of a placeholder", .deleteSA(SAIdentifier(destination: b, spi: placeholder)), "spi new-3", nil),
        ("outbound policy pinning a placeholder", .updatePolicy(policy(pinning: placeholder)), "spi new-3", nil),
        ("add-sa of an issued SPI", .addSA(sa(real)), "spi 0x00001234", "new-"),
        ("inbound policy without SPI", .addPolicy(policy(pinning: nil)), "dir in required", "new-"),
        (
            "delete-policy",
            .deletePolicy(PolicyIdentifier(selector: policy(pinning: nil).selector, direction: .inbound)),
            "dir in", "new-"
        ),
    ]

    @Test("an operation's placeholder SPI is named new-N from the operation's own SPI", arguments: cases.indices)
    func placeholderLabels(_ index: Int) {
        let (name, operation, expected, absent) = Self.cases[index]
        let placeholders: [SPI: Int] = [Self.placeholder: 3, SPI(0xFFFF_FFFF): 1, SPI(0xFFFF_FFFE): 2]
        let label = MeshwardController.label(operation, placeholders: placeholders)
        #expect(label.contains(expected), "\(name): \(label)")
        if let absent { #expect(!label.contains(absent), "\(name): \(label)") }
    }

    @Test(
        "a label is the operation's target with a placeholder SPI's hex form, and nothing else, written as new-N",
        arguments: cases.indices)
    func labelIsTargetWithPlaceholderReplaced(_ index: Int) {
        let (name, operation, _, _) = Self.cases[index]
        let placeholders: [SPI: Int] = [Self.placeholder: 3, SPI(0xFFFF_FFFF): 1, SPI(0xFFFF_FFFE): 2]
        let expected = operation.target.replacingOccurrences(of: Self.placeholder.hex, with: "new-3")
        #expect(MeshwardController.label(operation, placeholders: placeholders) == expected, "\(name)")
        #expect(MeshwardController.label(operation, placeholders: [:]) == operation.target, "\(name)")
    }

    static func document(operations: Int, stages: Int) -> PlanDocument {
        let operation = PlanDocument.Operation(node: "a", operation: "add-sa", target: "x", channel: "a->b/ipv4")
        let perStage = max(1, operations / max(1, stages))
        return PlanDocument(
            cluster: "lab", revision: "abc", changes: true,
            summary: .init(
                channelsCreated: 1, channelsRekeyed: 0, channelsUpdated: 0, channelsRemoved: 0,
                operations: operations),
            generations: [.init(channel: "a->b/ipv4", reason: "new")],
            stages: (1...stages).map { .init(stage: $0, operations: Array(repeating: operation, count: perStage)) },
            unreachable: [], previousRevision: nil, revisionChanged: true, settingsChanged: [], updatedChannels: [],
            channelChanges: [.init(channel: "a->b/ipv4", action: "create", reason: nil, differences: [])],
            warnings: [])
    }

    @Test(
        "counts read as English",
        arguments: [
            (1, 1, "1 channel to create, 0 to rekey, 0 to update, 0 to remove; 1 kernel operation in 1 stage"),
            (4, 2, "1 channel to create, 0 to rekey, 0 to update, 0 to remove; 4 kernel operations in 2 stages"),
        ])
    func grammar(operations: Int, stages: Int, expected: String) {
        let text = PlanText(Self.document(operations: operations, stages: stages)).text
        #expect(text.contains("\nplan: " + expected), "\(text)")
    }

    @Test("a hidden character in a name from the Store is escaped in the text")
    func escapesNames() {
        var document = Self.document(operations: 1, stages: 1)
        document.cluster = "lab\u{202E}x"
        document.stages[0].operations[0].node = "a\u{1B}[31m"
        let text = PlanText(document, verbose: true).text
        #expect(!text.unicodeScalars.contains { TerminalText.isHidden($0) && $0 != "\n" }, "\(text)")
        #expect(text.contains("lab\\u{202E}x"))
        #expect(text.contains("a\\u{1B}[31m: add-sa"))
    }

    @Test(
        "each channel change reads as one line",
        arguments: [
            (PlanChannelChange(channel: "a->b/ipv4", action: "create", reason: nil, differences: []), "+ a->b/ipv4"),
            (
                PlanChannelChange(
                    channel: "a->b/ipv4", action: "rekey", reason: "cipher-changed",
                    differences: [.init(property: "cipher", from: "aes-gcm-128", to: "aes-gcm-256")]),
                "~ a->b/ipv4  rekey (cipher-changed): cipher aes-gcm-128 → aes-gcm-256"
            ),
            (
                PlanChannelChange(channel: "a->b/ipv4", action: "rekey", reason: "age", differences: []),
                "~ a->b/ipv4  rekey (age)"
            ),
            (
                PlanChannelChange(
                    channel: "a->b/ipv6", action: "update", reason: "traffic",
                    differences: [.init(property: "traffic", from: "any", to: "tcp dport 80")]),
                "~ a->b/ipv6  update: traffic any → tcp dport 80"
            ),
            (
                PlanChannelChange(channel: "a->c/ipv4", action: "remove", reason: "not in the spec", differences: []),
                "- a->c/ipv4  remove (not in the spec)"
            ),
        ])
    func channelLine(_ change: PlanChannelChange, expected: String) {
        #expect(PlanText.line(change) == expected)
    }

    /// A plan that creates `web-i -> app-i` (flow web-app, i in 0..<count) and removes
    /// `old -> app-0` (no flow).
    static func wide(_ count: Int) -> PlanDocument {
        var document = document(operations: 1, stages: 1)
        document.channelChanges =
            (0..<count).map { index in
                var change = PlanChannelChange(
                    channel: "web-\(index)->app-\(index)/ipv4", action: "create", reason: nil, differences: [])
                change.from = "web-\(index)"
                change.to = "app-\(index)"
                change.flows = ["web-app"]
                return change
            } + [
                {
                    var change = PlanChannelChange(
                        channel: "old->app-0/ipv4", action: "remove", reason: "not in the spec", differences: [])
                    change.from = "old"
                    change.to = "app-0"
                    return change
                }()
            ]
        return document
    }

    @Test(
        "a plan of more than 200 channel changes counts them per flow and per node instead of a line each; verbose lists every channel"
    )
    func wideChangeCounted() {
        let text = PlanText(Self.wide(200)).text
        let lines = text.split(separator: "\n").map(String.init)
        #expect(!lines.contains("  + web-0->app-0/ipv4"), "\(text)")
        #expect(lines.contains { $0.hasPrefix("  201 channels change (more than 200)") }, "\(text)")
        #expect(lines.contains("  web-app: 200 to create"), "\(text)")
        #expect(lines.contains("  (no flow: not in the spec): 1 to remove"), "\(text)")
        #expect(lines.contains("  app-0: 1 to create, 1 to remove"), "\(text)")
        #expect(lines.contains("  web-199: 1 to create"), "\(text)")
        #expect(lines.contains("  old: 1 to remove"), "\(text)")
        let verbose = PlanText(Self.wide(200), verbose: true).text
        let listed = verbose.split(separator: "\n").map(String.init).filter {
            $0.hasPrefix("  + ") || $0.hasPrefix("  - ")
        }
        #expect(listed == Self.wide(200).channelChanges.map { "  " + PlanText.line($0) }, "\(verbose)")
        #expect(!verbose.contains("more than 200"))
    }

    @Test("a plan of exactly 200 channel changes still shows a line per channel")
    func twoHundredChangesListed() {
        let text = PlanText(Self.wide(199)).text
        #expect(text.contains("\n  + web-0->app-0/ipv4\n"), "\(text)")
        #expect(!text.contains("more than 200"), "\(text)")
    }

    @Test("a plan saved before channel changes named their nodes and flows still matches the same plan made now")
    func savedPlanWithoutNodesMatches() {
        let now = Self.wide(3)
        var saved = now
        for index in saved.channelChanges.indices {
            saved.channelChanges[index].from = nil
            saved.channelChanges[index].to = nil
            saved.channelChanges[index].flows = nil
        }
        #expect(PlanComparison.differences(saved: saved, now: now) == [])
        var moved = now
        moved.channelChanges[0].action = "rekey"
        #expect(PlanComparison.differences(saved: saved, now: moved) != [])
    }

    @Test(
        "verbose text of 40,001 channels and 51 nodes' operations, one node's name escaped (written on every core), is the line-by-line rendering"
    )
    func verboseTextIsLineByLine() {
        var document = Self.wide(40_000)
        // Nodes in no order, some with many operations, one name escaped.
        document.stages = (1...2).map { stage in
            PlanDocument.Stage(
                stage: stage,
                operations: (0..<5_000).map { index in
                    let node = index % 7 == 0 ? "n\u{1B}x" : "n\((index * 37) % 50)"
                    return PlanDocument.Operation(
                        node: node, operation: index % 2 == 0 ? "add-sa" : "add-policy", target: "t\(stage)-\(index)",
                        channel: nil)
                })
        }
        var expected: [String] = []
        for change in document.channelChanges { expected.append("  " + PlanText.line(change)) }
        for stage in document.stages {
            expected.append("stage \(stage.stage)")
            let nodes = Set(stage.operations.map(\.node)).sorted()
            for node in nodes {
                for operation in stage.operations where operation.node == node {
                    expected.append("  \(TerminalText.escaped(node)): \(operation.operation) \(operation.target)")
                }
            }
        }
        let lines = PlanText(document, verbose: true).text.split(separator: "\n", omittingEmptySubsequences: false)
            .map(String.init)
        let shown = lines.filter {
            $0.hasPrefix("  + ") || $0.hasPrefix("  - ") || $0.hasPrefix("stage ") || $0.hasPrefix("  n")
        }
        #expect(shown.count == expected.count)
        #expect(shown == expected)
    }

    @Test("operations per stage appear only with verbose")
    func verboseStages() {
        let document = Self.document(operations: 2, stages: 2)
        #expect(!PlanText(document).text.contains("stage 1"))
        #expect(PlanText(document, verbose: true).text.contains("stage 1\n  a: add-sa x"))
        #expect(PlanText(document).text.contains("\n  + a->b/ipv4\n"))
    }
}
