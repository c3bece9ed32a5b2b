import Testing

@testable import DesiredState

/// Messages an operator meets while fixing a spec: each says what to write instead, and names
/// that could display as something else are refused where they are written.
@Suite("Operator messages")
struct OperatorMessageTests {
    static let header = SpecTesting.header

    /// `(case name, spec text, expected location prefix, expected message part)`.
    static let durationAndCountCases: [DiagnosticCase] = [
        DiagnosticCase(
            "a bare number as drain asks for a unit, not for quotes", header + "defaults:\n  drain: 5\n",
            [("spec.yaml:4:10:", "'drain' needs a unit: write '5s'")]),
        DiagnosticCase(
            "a quoted number as drain says to add a unit", header + "defaults:\n  drain: '5'\n",
            [("spec.yaml:4:10:", "malformed duration '5': add a unit: '5s'")]),
        DiagnosticCase(
            "a fractional duration says fractions are not supported and offers the whole-unit form",
            header + "defaults:\n  rekey: { every: 1.5h }\n",
            [("spec.yaml:4:19:", "malformed duration '1.5h': fractions are not supported; write '1h30m'")]),
        DiagnosticCase(
            "a fraction without a whole-unit form still says fractions are not supported",
            header + "defaults:\n  rekey: { every: 0.0001ms }\n",
            [("spec.yaml:4:19:", "malformed duration '0.0001ms': fractions are not supported; combine whole units")]),
        DiagnosticCase(
            "a fractional bare number says both what is missing and what is not supported",
            header + "defaults:\n  drain: 2.5\n",
            [("spec.yaml:4:10:", "'drain' needs a unit, and fractions are not supported")]),
        DiagnosticCase(
            "a packet count beyond 64 bits says it is too large and gives the maximum",
            header + "defaults:\n  rekey: { packets: 18446744073709551616 }\n",
            [("spec.yaml:4:21:", "'rekey.packets' is too large: at most 18446744073709551615")]),
        DiagnosticCase(
            "a negative packet count is still not a positive integer",
            header + "defaults:\n  rekey: { packets: -3 }\n",
            [("spec.yaml:4:21:", "'rekey.packets' must be a positive integer, found -3")]),
    ]

    @Test("duration and count messages say what to write", arguments: durationAndCountCases)
    func durationAndCountMessages(_ testCase: DiagnosticCase) {
        let descriptions = SpecTesting.load(testCase.files).diagnostics.map(\.description)
        for expected in testCase.expected {
            #expect(
                descriptions.contains { $0.hasPrefix(expected.location) && $0.contains(expected.message) },
                "expected \(expected.location) \(expected.message)\n  got: \(descriptions)")
        }
    }

    static let twoNodes = """
        nodes:
          - { name: a, addresses: [198.18.0.1], labels: { tier: web } }
          - { name: b, addresses: [198.18.0.2], labels: { tier: app } }
        flows:
          - { name: ab, from: { tier: web }, to: { tier: app } }

        """

    static let hiddenCharacterCases: [DiagnosticCase] = [
        DiagnosticCase(
            "a right-to-left override in the cluster name", "version: 1\ncluster: \"shop\\u202eRTL\"\n" + twoNodes,
            [("spec.yaml:2:10:", "'cluster' contains U+202E")]),
        DiagnosticCase(
            "a left-to-right isolate in the cluster name", "version: 1\ncluster: \"shop\\u2066x\"\n" + twoNodes,
            [("spec.yaml:2:10:", "'cluster' contains U+2066")]),
        DiagnosticCase(
            "a zero-width space in a label value",
            header + "nodes:\n  - { name: a, addresses: [198.18.0.1], labels: { tier: \"web\\u200b\" } }\n",
            [("spec.yaml:4:57:", "label 'tier' of node 'a' contains U+200B")]),
        DiagnosticCase(
            "an escape character in a label key",
            header + "nodes:\n  - { name: a, addresses: [198.18.0.1], labels: { \"t\\eier\": web } }\n",
            [("spec.yaml:4:51:", "a label key of node 'a' contains U+001B")]),
        DiagnosticCase(
            "a bidirectional override in a flow selector",
            header + twoNodes.replacingOccurrences(of: "from: { tier: web }", with: "from: { tier: \"w\\u202deb\" }"),
            [("spec.yaml:7:31:", "selector label 'tier' of flow 'ab' contains U+202D")]),
    ]

    @Test(
        "names and labels holding control or bidirectional characters are refused at their place",
        arguments: hiddenCharacterCases)
    func hiddenCharacters(_ testCase: DiagnosticCase) {
        let result = SpecTesting.load(testCase.files)
        let descriptions = result.diagnostics.map(\.description)
        #expect(!result.isValid, "the spec was accepted")
        for expected in testCase.expected {
            #expect(
                descriptions.contains { $0.hasPrefix(expected.location) && $0.contains(expected.message) },
                "expected \(expected.location) \(expected.message)\n  got: \(descriptions)")
        }
    }
}
