import Foundation
import Testing

@testable import DesiredState

/// One spec of the hostile corpus (`Fixtures/hostile/`) and a problem it must be refused for.
struct HostileCase: Sendable, CustomTestStringConvertible {
    /// The file or directory, relative to the corpus.
    let path: String
    /// `line:column` in the file, or `file:line:column` for a file inside a directory case.
    let location: String
    /// A part of the message.
    let message: String

    init(_ path: String, _ location: String, _ message: String) {
        self.path = path
        self.location = location
        self.message = message
    }

    var testDescription: String { path }

    /// The `path:line:column: ` a matching diagnostic starts with, for the corpus at `root`.
    func expectedPrefix(root: String) -> String {
        let separator = location.split(separator: ":").count == 3 ? "/" : ":"
        return root + "/" + path + separator + location + ": "
    }
}

/// Malformed and hostile specs: each is refused, with a located diagnostic inside it.
///
/// How fast each is refused is a figure of `meshward-bench hostile-specs`, not a test: a wall-clock
/// bound fails on a loaded machine. The suite's time limit only stops a loader that hangs.
@Suite("Hostile specs", .timeLimit(.minutes(2)))
struct HostileSpecTests {
    /// The corpus directory inside the test bundle.
    static let corpus: String = {
        let fixtures = Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.path ?? "Fixtures"
        return fixtures + "/hostile"
    }()

    @Test("each hostile spec is refused with a located diagnostic inside it", arguments: cases)
    func refused(_ hostile: HostileCase) {
        let path = Self.corpus + "/" + hostile.path
        let result = SpecLoader().load(paths: [path])

        #expect(result.intent == nil, "a hostile spec compiled")
        #expect(!result.errors.isEmpty, "no error reported")
        for diagnostic in result.diagnostics {
            #expect(diagnostic.line > 0 && diagnostic.column > 0, "\(diagnostic)")
            #expect(diagnostic.file == path || diagnostic.file.hasPrefix(path + "/"), "\(diagnostic)")
        }
        let prefix = hostile.expectedPrefix(root: Self.corpus)
        let descriptions = result.errors.map(\.description)
        #expect(
            descriptions.contains { $0.hasPrefix(prefix) && $0.contains(hostile.message) },
            "expected \(prefix)...\(hostile.message)\ngot:\n\(descriptions.prefix(5).joined(separator: "\n"))")
    }

    @Test("the table names every file and directory of the corpus, and only those")
    func tableMatchesCorpus() throws {
        let entries = try FileManager.default.contentsOfDirectory(atPath: Self.corpus)
        #expect(Set(entries) == Set(Self.cases.map(\.path)))
        #expect(Self.cases.count >= 60)
    }

    @Test("a spec file over 16 MiB is refused before it is parsed, from disk and from memory")
    func overSizeLimit() throws {
        let directory = try SpecTesting.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var text = "version: 1\ncluster: huge\nnodes:\n"
        var index = 0
        while text.utf8.count <= YAMLGuard.maximumFileSize {
            text += "  - { name: n\(index), addresses: [\"2001:db8::\(String(index, radix: 16))\"] }\n"
            index += 1
        }
        let path = directory.appendingPathComponent("huge.yaml").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))

        let fromDisk = SpecLoader().load(paths: [path])
        #expect(fromDisk.intent == nil)
        #expect(fromDisk.diagnostics.map(\.description).first?.hasPrefix("\(path):1:1: spec file is") == true)

        let fromMemory = SpecTesting.load([("huge.yaml", text)])
        #expect(fromMemory.intent == nil)
        #expect(fromMemory.diagnostics.first?.message.contains("over the limit of 16777216 bytes") == true)
    }

    static let cases: [HostileCase] = [
        HostileCase("address-broadcast.yaml", "6:17", "address 255.255.255.255 of node 'a' is the broadcast address"),
        HostileCase(
            "address-duplicate-spellings.yaml", "7:17", "address 2001:db8::1 of node 'b' is already used by node 'a'"),
        HostileCase("address-extremely-long.yaml", "6:17", "is not an IPv4 or IPv6 address"),
        HostileCase("address-hostname.yaml", "6:17", "'web-1.example.com' of node 'a' is not an IPv4 or IPv6"),
        HostileCase(
            "address-ipv6-double-gap.yaml", "6:17", "'2001::db8::1' of node 'a' is not an IPv4 or IPv6 address"),
        HostileCase(
            "address-ipv6-too-many-groups.yaml", "6:17", "'2001:db8:1:2:3:4:5:6:7' of node 'a' is not an IPv4 or IPv6"),
        HostileCase(
            "address-leading-zeros.yaml", "6:17", "'198.018.000.001' of node 'a' is not an IPv4 or IPv6 address"),
        HostileCase("address-loopback-v4-other.yaml", "6:17", "address 127.45.6.7 of node 'a' is a loopback address"),
        HostileCase("address-loopback-v4.yaml", "6:17", "address 127.0.0.1 of node 'a' is a loopback address"),
        HostileCase("address-loopback-v6.yaml", "6:17", "address ::1 of node 'a' is a loopback address"),
        HostileCase("address-mapped-hex.yaml", "6:17", "address ::ffff:c612:1 of node 'a' is an IPv4-mapped IPv6"),
        HostileCase("address-mapped.yaml", "6:17", "address ::ffff:198.18.0.1 of node 'a' is an IPv4-mapped"),
        HostileCase("address-multicast-v4.yaml", "6:17", "address 224.0.0.1 of node 'a' is a multicast address"),
        HostileCase("address-multicast-v6.yaml", "6:17", "address ff02::1 of node 'a' is a multicast address"),
        HostileCase("address-network.yaml", "6:17", "address '198.18.0.0/24' of node 'a' is a prefix"),
        HostileCase("address-number.yaml", "6:17", "'12345' of node 'a' is not an IPv4 or IPv6 address"),
        HostileCase(
            "address-octet-too-large.yaml", "6:17", "'198.18.0.256' of node 'a' is not an IPv4 or IPv6 address"),
        HostileCase("address-three-octets.yaml", "6:17", "'198.18.1' of node 'a' is not an IPv4 or IPv6 address"),
        HostileCase("address-two-ipv4.yaml", "6:29", "node 'a' has a second IPv4 address 198.18.0.2"),
        HostileCase("address-unspecified-v4.yaml", "6:17", "address 0.0.0.0 of node 'a' is the unspecified address"),
        HostileCase("address-unspecified-v6.yaml", "6:17", "address :: of node 'a' is the unspecified address"),
        HostileCase("address-zoned.yaml", "6:17", "address 'fe80::1%eth0' of node 'a' has a zone"),
        HostileCase("addresses-empty.yaml", "5:16", "node 'a' must have 1 or 2 addresses"),
        HostileCase("addresses-scalar.yaml", "5:16", "'addresses' of node 'a' must be a list, found the string"),
        HostileCase("addresses-three.yaml", "5:16", "node 'a' must have 1 or 2 addresses"),
        HostileCase("alias-as-explicit-key.yaml", "4:1", "an alias may not be used as a mapping key"),
        HostileCase("alias-as-flow-key.yaml", "4:11", "an alias may not be used as a mapping key"),
        HostileCase("alias-as-key.yaml", "4:1", "an alias may not be used as a mapping key"),
        HostileCase("alias-inside-explicit-key.yaml", "14:1", "explicit mapping keys ('? ') are not supported"),
        HostileCase("alias-inside-flow-key.yaml", "14:1", "a list or mapping may not be used as a mapping key"),
        HostileCase("alias-inside-flow-mapping-key.yaml", "14:6", "a list or mapping may not be used as a mapping key"),
        HostileCase("alias-recursive.yaml", "4:14", "found undefined alias"),
        HostileCase("bytes-control-character.yaml", "1:1", "not readable as YAML: control characters are not allowed"),
        HostileCase("bytes-double-bom.yaml", "3:8", "'nodes' must be a list, found the integer 7"),
        HostileCase(
            "bytes-escaped-control-in-cluster.yaml", "3:10", "'cluster' contains U+0007"),
        HostileCase("bytes-invalid-utf8.yaml", "1:1", "spec file is not UTF-8 text"),
        HostileCase("bytes-latin1.yaml", "1:1", "spec file is not UTF-8 text"),
        HostileCase("bytes-nul-in-value.yaml", "1:1", "not readable as YAML: control characters are not allowed"),
        HostileCase("bytes-nul-only.yaml", "1:1", "not readable as YAML: control characters are not allowed"),
        HostileCase("bytes-overlong-encoding.yaml", "1:1", "spec file is not UTF-8 text"),
        HostileCase("bytes-surrogate-encoded.yaml", "1:1", "spec file is not UTF-8 text"),
        HostileCase("bytes-truncated-multibyte.yaml", "1:1", "spec file is not UTF-8 text"),
        HostileCase("bytes-utf16-bom.yaml", "1:1", "spec file is not UTF-8 text"),
        HostileCase("bytes-utf8-bom-then-error.yaml", "4:1", "unknown key 'colour' in the top level of a spec file"),
        HostileCase("cipher-null.yaml", "4:11", "'cipher' must be a string, found nothing (null)"),
        HostileCase("cipher-number.yaml", "4:11", "'cipher' must be a string, found the integer 256"),
        HostileCase("cipher-unknown.yaml", "4:11", "unknown cipher 'des-cbc'"),
        HostileCase("cluster-empty.yaml", "2:10", "'cluster' must be a non-empty name"),
        HostileCase("cluster-mapping.yaml", "2:10", "'cluster' must be a string, found a mapping"),
        HostileCase("cluster-missing.yaml", "1:1", "no spec file sets 'cluster'"),
        HostileCase("cluster-number.yaml", "2:10", "'cluster' must be a string, found the integer 12"),
        HostileCase("collection-key-plain.yaml", "4:1", "a list or mapping may not be used as a mapping key"),
        HostileCase("deep-block-mappings-65.yaml", "68:65", "collections are nested more than 64 levels deep"),
        HostileCase("deep-block-mappings-indented.yaml", "68:65", "collections are nested more than 64 levels deep"),
        HostileCase("deep-block-sequences-1200.yaml", "1003:1000", "collections are nested more than 64 levels deep"),
        HostileCase("deep-block-sequences-indented.yaml", "68:64", "collections are nested more than 64 levels deep"),
        HostileCase("deep-block-sequences-one-line.yaml", "5:129", "collections are nested more than 64 levels deep"),
        HostileCase("deep-flow-mappings.yaml", "4:264", "collections are nested more than 64 levels deep"),
        HostileCase("deep-flow-sequences.yaml", "4:72", "collections are nested more than 64 levels deep"),
        HostileCase("deep-json-arrays-compact.json", "1:106", "collections are nested more than 64 levels deep"),
        HostileCase("deep-json-objects.json", "1:5037", "collections are nested more than 64 levels deep"),
        HostileCase("defaults-sequence.yaml", "3:11", "'defaults' must be a mapping, found a list"),
        HostileCase("defaults-unknown-key.yaml", "4:3", "unknown key 'cypher' in 'defaults'"),
        HostileCase("dir-cipher-conflict-across-files", "f2.yaml:7:13", "put different ciphers on nodes 'a' and 'b'"),
        HostileCase(
            "dir-conflicting-cluster", "b.json:1:27",
            "dir-conflicting-cluster/a.yaml:2:10; every file that sets 'cluster' must set it alike"),
        HostileCase("dir-conflicting-defaults", "b.yaml:3:1", "'defaults' differs from the one at"),
        HostileCase(
            "dir-duplicate-address-across-files", "b.yml:5:17",
            "address 198.18.0.1 of node 'b' is already used by node 'a'"),
        HostileCase("dir-duplicate-node-across-files", "b.yaml:4:11", "duplicate node name 'a'"),
        HostileCase("dir-flow-name-duplicate-across-files", "f2.yaml:4:11", "duplicate flow name 'ab'"),
        HostileCase("dir-invalid-utf8-file", "bad.yaml:1:1", "spec file is not UTF-8 text"),
        HostileCase("dir-one-bad-file", "bad.yaml:4:1", "did not find expected node content"),
        HostileCase("dir-without-specs", "1:1", "directory has no spec files (*.yaml, *.yml, *.json)"),
        HostileCase("duration-empty.yaml", "4:10", "empty duration in 'drain'"),
        HostileCase(
            "duration-fraction.yaml", "4:10", "malformed duration '1.5h': fractions are not supported; write '1h30m'"),
        HostileCase("duration-mapping.yaml", "4:10", "'drain' must be a string like '24h', '90s' or '1h30m',"),
        HostileCase("duration-negative.yaml", "4:10", "negative duration '-5s' in 'drain'"),
        HostileCase("duration-no-unit.yaml", "4:10", "'drain' needs a unit: write '"),
        HostileCase("duration-overflow-sum.yaml", "4:19", "duration '9223372036854775807d9223372036854775807h' is too"),
        HostileCase("duration-overflow.yaml", "4:19", "duration '99999999999999999999999999999s' is too long"),
        HostileCase("duration-repeated-unit.yaml", "4:10", "malformed duration '1h1h': units must go from largest to"),
        HostileCase("duration-too-long.yaml", "4:19", "duration '3651d' is too long"),
        HostileCase("duration-unicode-digits.yaml", "4:10", "malformed duration '٥s': expected a number at '٥s' in"),
        HostileCase(
            "duration-units-out-of-order.yaml", "4:10", "malformed duration '30m1h': units must go from largest to"),
        HostileCase("duration-unknown-unit.yaml", "4:10", "malformed duration '5x': unknown unit 'x'"),
        HostileCase("duration-whitespace.yaml", "4:10", "malformed duration '5 s': add a unit: '5s'"),
        HostileCase("duration-zero-rekey.yaml", "4:19", "'rekey.every' must be longer than zero, found '0s'"),
        HostileCase("empty-comments-only.yaml", "1:1", "spec file is empty"),
        HostileCase("empty-document-marker.yaml", "1:1", "spec file is empty"),
        HostileCase("empty-file.yaml", "1:1", "spec file is empty"),
        HostileCase("empty-null-document.yaml", "1:1", "spec file is empty"),
        HostileCase("empty-whitespace.yaml", "3:1", "found character that cannot start any token"),
        HostileCase("endpoint-netns-empty.yaml", "4:13", "unknown endpoint 'netns:'"),
        HostileCase("endpoint-netns-traversal.yaml", "4:13", "unknown endpoint 'netns:../../etc/passwd'"),
        HostileCase("endpoint-node-number.yaml", "6:15", "'endpoint' must be a string, found the integer 7"),
        HostileCase("endpoint-unknown.yaml", "4:13", "unknown endpoint 'ssh'"),
        HostileCase("enforcement-unknown.yaml", "4:16", "unknown enforcement 'sometimes'"),
        HostileCase("explicit-scalar-key.yaml", "3:1", "explicit mapping keys ('? ') are not supported"),
        HostileCase("flow-contradictory-ciphers.yaml", "16:13", "put different ciphers on nodes 'a' and 'b'"),
        HostileCase("flow-missing-from.yaml", "9:5", "flow 'ab' needs 'from', a label selector such as { tier:"),
        HostileCase("flow-name-duplicate.yaml", "12:11", "duplicate flow name 'ab'"),
        HostileCase("flow-overlapping-selectors-ciphers.yaml", "13:13", "put different ciphers on nodes 'a' and 'b'"),
        HostileCase(
            "flow-selector-list-value.yaml", "10:19", "selector label 'name' of flow 'ab' must be a string, found"),
        HostileCase(
            "flow-selector-scalar.yaml", "10:11", "'from' of flow 'ab' must be a mapping, found the string 'a'"),
        HostileCase("flow-self-only.yaml", "9:11", "flow 'aa' selects only node 'a' on both sides"),
        HostileCase("flow-unknown-key.yaml", "12:5", "unknown key 'protocol' in a flow"),
        HostileCase("flows-mapping.yaml", "9:3", "'flows' must be a list, found a mapping"),
        HostileCase("json-bad-address.json", "1:76", "address ::1 of node 'a' is a loopback address"),
        HostileCase("json-comment.json", "2:11", "mapping values are not allowed in this context"),
        HostileCase("json-duplicate-key.json", "1:2", "duplicate key 'version' in one mapping"),
        HostileCase("json-string-version.json", "1:13", "'version' must be an integer, found the string 'one'"),
        HostileCase("json-two-objects.json", "2:1", "did not find expected <document start>"),
        HostileCase("json-unclosed.json", "2:1", "did not find expected node content"),
        HostileCase("json-unknown-key.json", "1:38", "unknown key 'Nodes' in the top level of a spec file"),
        HostileCase("json-wrong-type.json", "1:47", "'nodes' must be a list, found a mapping"),
        HostileCase("labels-boolean-value.yaml", "6:23", "label 'public' of node 'a' must be a string, found the"),
        HostileCase("labels-nested-mapping.yaml", "6:21", "label 'tier' of node 'a' must be a string, found a mapping"),
        HostileCase("labels-number-value.yaml", "6:21", "label 'tier' of node 'a' must be a string, found the"),
        HostileCase("labels-sequence.yaml", "6:13", "'labels' of node 'a' must be a mapping, found a list"),
        HostileCase("laughs-doubling-chain.yaml", "25:5", "the document expands to more than 1000000 nodes through"),
        HostileCase("laughs-mappings.yaml", "9:5", "the document expands to more than 1000000 nodes through"),
        HostileCase("laughs-sequences.yaml", "8:5", "the document expands to more than 1000000 nodes through"),
        HostileCase("laughs-under-node-labels.yaml", "9:5", "the document expands to more than 1000000 nodes through"),
        HostileCase("laughs-wide.yaml", "4:6", "the document expands to more than 1000000 nodes through"),
        HostileCase("long-comment-then-error.yaml", "4:8", "'nodes' must be a list, found the integer 5"),
        HostileCase("long-line-unknown-key.yaml", "3:100001", "could not find expected ':'"),
        HostileCase(
            "long-string-cluster.yaml", "2:10", "'cluster' contains U+0007"),
        HostileCase("many-errors.yaml", "5:42", "unknown key 'colour' in a node"),
        HostileCase("node-duplicate-key.yaml", "4:5", "duplicate key 'name' in one mapping"),
        HostileCase("node-missing-addresses.yaml", "4:5", "node 'a' needs 'addresses'"),
        HostileCase("node-missing-name.yaml", "4:5", "a node needs a 'name'"),
        HostileCase("node-name-64-chars.yaml", "4:11", "invalid node name"),
        HostileCase("node-name-duplicate.yaml", "6:11", "duplicate node name 'a'"),
        HostileCase("node-name-extremely-long.yaml", "4:11", "invalid node name"),
        HostileCase("node-name-leading-dash.yaml", "4:11", "invalid node name '-web': use 1 to 63 lowercase letters,"),
        HostileCase("node-name-number.yaml", "4:11", "a node's 'name' must be a string, found the integer 12"),
        HostileCase("node-name-unicode.yaml", "4:11", "invalid node name 'wéb': use 1 to 63 lowercase letters,"),
        HostileCase("node-name-uppercase.yaml", "4:11", "invalid node name 'Web_1': use 1 to 63 lowercase letters,"),
        HostileCase("node-scalar-entry.yaml", "4:5", "a node must be a mapping, found the string 'a'"),
        HostileCase("node-unknown-key.yaml", "5:5", "unknown key 'adresses' in a node"),
        HostileCase("nodes-mapping.yaml", "4:3", "'nodes' must be a list, found a mapping"),
        HostileCase("nodes-scalar.yaml", "3:8", "'nodes' must be a list, found the string 'a, b'"),
        HostileCase("packets-negative.yaml", "4:21", "'rekey.packets' must be a positive integer, found -1"),
        HostileCase("packets-overflow.yaml", "4:21", "'rekey.packets' is too large: at most 18446744073709551615"),
        HostileCase("packets-string.yaml", "4:21", "'rekey.packets' must be a positive integer, found the"),
        HostileCase("packets-zero.yaml", "4:21", "'rekey.packets' must be a positive integer, found 0"),
        HostileCase("ports-empty-list.yaml", "12:12", "flow 'ab' has an empty 'ports' list"),
        HostileCase("ports-huge-number.yaml", "12:13", "port 99999999999999999999999999 in"),
        HostileCase("ports-icmp-with-port.yaml", "12:13", "'icmp' has no ports"),
        HostileCase("ports-not-digits.yaml", "12:13", "malformed port 'tcp/http': 'http' is not a number"),
        HostileCase("ports-number.yaml", "12:13", "a port of flow 'ab' must be a string, found the integer 8080"),
        HostileCase("ports-range.yaml", "12:13", "port ranges are not supported in 'tcp/80-90'"),
        HostileCase("ports-scalar.yaml", "12:12", "'ports' of flow 'ab' must be a list, found the string"),
        HostileCase("ports-signed.yaml", "12:13", "malformed port 'tcp/+80': '+80' is not a number"),
        HostileCase("ports-too-large.yaml", "12:13", "port 65536 in 'udp/65536' is out of range"),
        HostileCase("ports-unknown-protocol.yaml", "12:13", "unknown protocol 'ftp' in port 'ftp/21'"),
        HostileCase("ports-zero.yaml", "12:13", "port 0 in 'tcp/0' is out of range"),
        HostileCase("rekey-scalar.yaml", "4:10", "'rekey' must be a mapping, found the string '24h'"),
        HostileCase("rekey-unknown-key.yaml", "4:24", "unknown key 'bytes' in 'rekey'"),
        HostileCase("reqid-negative.yaml", "3:8", "'reqid' must be between 1 and 0xffffffff, found -5"),
        HostileCase("reqid-overflow.yaml", "3:8", "'reqid' is out of range"),
        HostileCase("reqid-string.yaml", "3:8", "'reqid' must be an integer, found the string 'lots'"),
        HostileCase("reqid-too-large.yaml", "3:8", "'reqid' must be between 1 and 0xffffffff, found 4294967296"),
        HostileCase("reqid-zero.yaml", "3:8", "'reqid' must be between 1 and 0xffffffff, found 0"),
        HostileCase("root-number.json", "1:1", "the top level of a spec file must be a mapping, found the integer 42"),
        HostileCase("root-scalar.yaml", "1:1", "the top level of a spec file must be a mapping, found the string"),
        HostileCase("root-sequence.yaml", "2:1", "the top level of a spec file must be a mapping, found a list"),
        HostileCase("syntax-anchor-without-node.yaml", "2:13", "did not find expected key"),
        HostileCase("syntax-bad-indentation.yaml", "3:10", "mapping values are not allowed in this context"),
        HostileCase("syntax-block-scalar-bad-indicator.yaml", "3:11", "found an indentation indicator equal to 0"),
        HostileCase("syntax-invalid-escape.yaml", "3:15", "found unknown escape character"),
        HostileCase("syntax-mapping-value-on-value.yaml", "3:17", "mapping values are not allowed in this context"),
        HostileCase("syntax-merge-key.yaml", "5:3", "unknown key '<<' in 'defaults'"),
        HostileCase("syntax-multiple-documents.yaml", "5:1", "but found another document"),
        HostileCase("syntax-sequence-mapping-mix.yaml", "3:1", "did not find expected key"),
        HostileCase("syntax-stray-flow-close.yaml", "4:8", "did not find expected node content"),
        HostileCase("syntax-tab-in-mapping-indent.yaml", "5:1", "found character that cannot start any token"),
        HostileCase("syntax-tab-indentation.yaml", "5:1", "found character that cannot start any token"),
        HostileCase("syntax-unclosed-double-quote.yaml", "7:1", "found unexpected end of stream"),
        HostileCase("syntax-unclosed-flow-mapping.yaml", "5:6", "did not find expected ',' or '}'"),
        HostileCase("syntax-unclosed-flow-sequence.yaml", "5:1", "did not find expected ',' or ']'"),
        HostileCase("syntax-unclosed-single-quote.yaml", "4:1", "found unexpected end of stream"),
        HostileCase("syntax-undefined-alias.yaml", "3:10", "found undefined alias"),
        HostileCase("syntax-unknown-directive-version.yaml", "1:1", "found incompatible YAML document"),
        HostileCase("top-duplicate-key.yaml", "3:1", "duplicate key 'cluster' in one mapping"),
        HostileCase("top-unknown-key.yaml", "4:1", "unknown key 'clustre' in the top level of a spec file"),
        HostileCase("version-float.yaml", "1:10", "'version' must be an integer, found the number 1.0"),
        HostileCase("version-huge.yaml", "1:10", "'version' is out of range"),
        HostileCase("version-missing.yaml", "1:1", "no spec file sets 'version'"),
        HostileCase("version-negative.yaml", "1:10", "unsupported spec version -1"),
        HostileCase("version-null.yaml", "1:9", "'version' must be an integer, found nothing (null)"),
        HostileCase("version-sequence.yaml", "1:10", "'version' must be an integer, found a list"),
        HostileCase("version-string.yaml", "1:10", "'version' must be an integer, found the string '1'"),
        HostileCase("version-two.yaml", "1:10", "unsupported spec version 2"),
    ]
}
