import Testing

@testable import DesiredState

/// One invalid (or suspicious) spec and the diagnostics it must produce.
struct DiagnosticCase: CustomTestStringConvertible, Sendable {
    let name: String
    let files: [(String, String)]
    /// Each entry must be a prefix-and-substring of some diagnostic: `location` starts its
    /// description and `message` appears in it.
    let expected: [(location: String, message: String)]
    /// True when only warnings are expected and the spec must still compile.
    var compiles = false

    var testDescription: String { name }

    init(_ name: String, _ text: String, _ expected: [(String, String)], compiles: Bool = false) {
        self.init(name, files: [("spec.yaml", text)], expected, compiles: compiles)
    }

    init(_ name: String, files: [(String, String)], _ expected: [(String, String)], compiles: Bool = false) {
        self.name = name
        self.files = files
        self.expected = expected.map { (location: $0.0, message: $0.1) }
        self.compiles = compiles
    }
}

private let header = SpecTesting.header
/// Two nodes at lines 4-9 (a: web, 198.18.0.1; b: app, 198.18.0.2).
private let twoNodes =
    header + """
        nodes:
          - name: a
            addresses: [198.18.0.1]
            labels: { tier: web }
          - name: b
            addresses: [198.18.0.2]
            labels: { tier: app }

        """

@Suite("Diagnostics")
struct DiagnosticTests {
    static let cases: [DiagnosticCase] = [
        // Top level.
        DiagnosticCase(
            "unsupported version", "version: 2\ncluster: x\n",
            [("spec.yaml:1:10:", "unsupported spec version 2; this Meshward reads version 1")]),
        DiagnosticCase(
            "version not an integer", "version: one\ncluster: x\n",
            [("spec.yaml:1:10:", "'version' must be an integer, found the string 'one'")]),
        DiagnosticCase(
            "missing version and cluster", "nodes: []\n",
            [("spec.yaml:1:1:", "no spec file sets 'version'"), ("spec.yaml:1:1:", "no spec file sets 'cluster'")]),
        DiagnosticCase(
            "unknown top-level key", header + "clusters: y\n",
            [
                (
                    "spec.yaml:3:1:",
                    "unknown key 'clusters' in the top level of a spec file; allowed keys: version, cluster, reqid, defaults, nodes, flows"
                )
            ]),
        DiagnosticCase(
            "top level not a mapping", "- a\n- b\n",
            [("spec.yaml:1:1:", "the top level of a spec file must be a mapping, found a list")]),
        DiagnosticCase(
            "cluster wrong type", "version: 1\ncluster: [a]\n",
            [("spec.yaml:2:10:", "'cluster' must be a string, found a list")]),
        DiagnosticCase(
            "cluster null", "version: 1\ncluster:\n",
            [("spec.yaml:2:", "'cluster' must be a string, found nothing (null)")]),
        DiagnosticCase(
            "reqid zero", header + "reqid: 0\n",
            [("spec.yaml:3:8:", "'reqid' must be between 1 and 0xffffffff, found 0")]),
        DiagnosticCase(
            "reqid too large", header + "reqid: 0x100000000\n",
            [("spec.yaml:3:8:", "'reqid' must be between 1 and 0xffffffff")]),
        DiagnosticCase(
            "empty file", "",
            [("spec.yaml:1:1:", "spec file is empty")]),
        DiagnosticCase(
            "comments only", "# nothing here\n",
            [("spec.yaml:1:1:", "spec file is empty")]),
        DiagnosticCase(
            "not YAML", "version: [1\n",
            [("spec.yaml:2:1:", "not valid YAML: did not find expected ',' or ']'")]),
        DiagnosticCase(
            "duplicate key", "version: 1\nversion: 1\ncluster: x\n",
            [("spec.yaml:", "duplicate key 'version' in one mapping")]),
        DiagnosticCase(
            "tab indentation", "version: 1\ncluster: x\nnodes:\n\t- name: a\n",
            [("spec.yaml:4:1:", "not valid YAML")]),

        // Defaults.
        DiagnosticCase(
            "unknown defaults key", header + "defaults:\n  ciphers: aes-gcm-128\n",
            [
                (
                    "spec.yaml:4:3:",
                    "unknown key 'ciphers' in 'defaults'; allowed keys: cipher, rekey, drain, enforcement, endpoint"
                )
            ]),
        DiagnosticCase(
            "defaults not a mapping", header + "defaults: fast\n",
            [("spec.yaml:3:11:", "'defaults' must be a mapping, found the string 'fast'")]),
        DiagnosticCase(
            "unknown cipher", header + "defaults:\n  cipher: aes-128\n",
            [
                (
                    "spec.yaml:4:11:",
                    "unknown cipher 'aes-128'; use one of aes-gcm-128, aes-gcm-256, chacha20-poly1305, aes-cbc-hmac-sha256"
                )
            ]),
        DiagnosticCase(
            "unknown rekey key", header + "defaults:\n  rekey: { every: 1h, bytes: 5 }\n",
            [("spec.yaml:4:23:", "unknown key 'bytes' in 'rekey'; allowed keys: every, packets")]),
        DiagnosticCase(
            "rekey every zero", header + "defaults:\n  rekey: { every: 0s }\n",
            [("spec.yaml:4:19:", "'rekey.every' must be longer than zero, found '0s'")]),
        DiagnosticCase(
            "duration with unknown unit", header + "defaults:\n  drain: 5x\n",
            [("spec.yaml:4:10:", "malformed duration '5x': unknown unit 'x'")]),
        DiagnosticCase(
            "duration without unit", header + "defaults:\n  drain: 90\n",
            [("spec.yaml:4:10:", "'drain' needs a unit: write '90s' (or with d, h, m or ms), found the number 90")]),
        DiagnosticCase(
            "duration negative", header + "defaults:\n  drain: -5s\n",
            [("spec.yaml:4:10:", "negative duration '-5s'")]),
        DiagnosticCase(
            "duration empty", header + "defaults:\n  drain: ''\n",
            [("spec.yaml:4:10:", "empty duration")]),
        DiagnosticCase(
            "duration units out of order", header + "defaults:\n  rekey: { every: 30m1h }\n",
            [("spec.yaml:4:19:", "units must go from largest to smallest")]),
        DiagnosticCase(
            "duration number missing", header + "defaults:\n  drain: h\n",
            [("spec.yaml:4:10:", "malformed duration 'h': expected a number")]),
        DiagnosticCase(
            "duration too long", header + "defaults:\n  rekey: { every: 4000d }\n",
            [("spec.yaml:4:19:", "duration '4000d' is too long")]),
        DiagnosticCase(
            "packets zero", header + "defaults:\n  rekey: { packets: 0 }\n",
            [("spec.yaml:4:21:", "'rekey.packets' must be a positive integer, found 0")]),
        DiagnosticCase(
            "packets not a number", header + "defaults:\n  rekey: { packets: many }\n",
            [("spec.yaml:4:21:", "'rekey.packets' must be a positive integer, found the string 'many'")]),
        DiagnosticCase(
            "unknown enforcement", header + "defaults:\n  enforcement: strict\n",
            [("spec.yaml:4:16:", "unknown enforcement 'strict'; use 'required' or 'permissive'")]),
        DiagnosticCase(
            "unknown endpoint", header + "defaults:\n  endpoint: ssh\n",
            [("spec.yaml:4:13:", "unknown endpoint 'ssh'; use 'sim', 'local', 'netns:NAME'")]),
        DiagnosticCase(
            "namespace with a slash", header + "defaults:\n  endpoint: netns:../etc\n",
            [("spec.yaml:4:13:", "unknown endpoint 'netns:../etc'")]),

        // Nodes.
        DiagnosticCase(
            "nodes not a list", header + "nodes: { a: 1 }\n",
            [("spec.yaml:3:8:", "'nodes' must be a list, found a mapping")]),
        DiagnosticCase(
            "node not a mapping", header + "nodes:\n  - web-1\n",
            [("spec.yaml:4:5:", "a node must be a mapping, found the string 'web-1'")]),
        DiagnosticCase(
            "unknown node key", header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n    address: 198.18.0.2\n",
            [("spec.yaml:6:5:", "unknown key 'address' in a node; allowed keys: name, addresses, labels, endpoint")]),
        DiagnosticCase(
            "node without name", header + "nodes:\n  - addresses: [198.18.0.1]\n",
            [("spec.yaml:4:5:", "a node needs a 'name'")]),
        DiagnosticCase(
            "node without addresses", header + "nodes:\n  - name: a\n",
            [("spec.yaml:4:5:", "node 'a' needs 'addresses'")]),
        DiagnosticCase(
            "invalid node name", header + "nodes:\n  - name: Web_1\n    addresses: [198.18.0.1]\n",
            [("spec.yaml:4:11:", "invalid node name 'Web_1': use 1 to 63 lowercase letters")]),
        DiagnosticCase(
            "node name too long",
            header + "nodes:\n  - name: \(String(repeating: "a", count: 64))\n    addresses: [198.18.0.1]\n",
            [("spec.yaml:4:11:", "invalid node name")]),
        DiagnosticCase(
            "node name ends with dash", header + "nodes:\n  - name: web-\n    addresses: [198.18.0.1]\n",
            [("spec.yaml:4:11:", "invalid node name 'web-'")]),
        DiagnosticCase(
            "numeric node name", header + "nodes:\n  - name: 10\n    addresses: [198.18.0.1]\n",
            [("spec.yaml:4:11:", "a node's 'name' must be a string, found the integer 10; quote it: \"10\"")]),
        DiagnosticCase(
            "addresses not a list", header + "nodes:\n  - name: a\n    addresses: 198.18.0.1\n",
            [("spec.yaml:5:16:", "'addresses' of node 'a' must be a list, found the string '198.18.0.1'")]),
        DiagnosticCase(
            "no addresses", header + "nodes:\n  - name: a\n    addresses: []\n",
            [("spec.yaml:5:16:", "node 'a' must have 1 or 2 addresses (one IPv4, one IPv6), found 0")]),
        DiagnosticCase(
            "three addresses", header + "nodes:\n  - name: a\n    addresses: [198.18.0.1, '2001:db8::1', 198.18.0.3]\n",
            [
                ("spec.yaml:5:16:", "found 3"),
                (
                    "spec.yaml:5:44:",
                    "node 'a' has a second IPv4 address 198.18.0.3 (first: 198.18.0.1 at spec.yaml:5:17)"
                ),
            ]),
        DiagnosticCase(
            "two IPv6 addresses", header + "nodes:\n  - name: a\n    addresses: ['2001:db8::1', '2001:db8::2']\n",
            [("spec.yaml:5:32:", "second IPv6 address 2001:db8::2")]),
        DiagnosticCase(
            "same address twice", header + "nodes:\n  - name: a\n    addresses: [198.18.0.1, 198.18.0.1]\n",
            [("spec.yaml:5:29:", "node 'a' lists address 198.18.0.1 twice")]),
        DiagnosticCase(
            "zoned address", header + "nodes:\n  - name: a\n    addresses: ['fe80::1%eth0']\n",
            [("spec.yaml:5:17:", "address 'fe80::1%eth0' of node 'a' has a zone")]),
        DiagnosticCase(
            "prefix as address", header + "nodes:\n  - name: a\n    addresses: [198.18.0.0/24]\n",
            [("spec.yaml:5:17:", "address '198.18.0.0/24' of node 'a' is a prefix")]),
        DiagnosticCase(
            "not an address", header + "nodes:\n  - name: a\n    addresses: [web-1.example]\n",
            [("spec.yaml:5:17:", "'web-1.example' of node 'a' is not an IPv4 or IPv6 address")]),
        DiagnosticCase(
            "address is a mapping", header + "nodes:\n  - name: a\n    addresses: [{ v4: 1 }]\n",
            [("spec.yaml:5:17:", "an address of node 'a' must be a string")]),
        DiagnosticCase(
            "multicast address", header + "nodes:\n  - name: a\n    addresses: [224.0.0.5]\n",
            [("spec.yaml:5:17:", "address 224.0.0.5 of node 'a' is a multicast address")]),
        DiagnosticCase(
            "IPv6 multicast", header + "nodes:\n  - name: a\n    addresses: ['ff02::1']\n",
            [("spec.yaml:5:17:", "is a multicast address")]),
        DiagnosticCase(
            "unspecified address", header + "nodes:\n  - name: a\n    addresses: [0.0.0.0]\n",
            [("spec.yaml:5:17:", "address 0.0.0.0 of node 'a' is the unspecified address")]),
        DiagnosticCase(
            "loopback address", header + "nodes:\n  - name: a\n    addresses: ['::1']\n",
            [("spec.yaml:5:17:", "address ::1 of node 'a' is a loopback address")]),
        DiagnosticCase(
            "broadcast address", header + "nodes:\n  - name: a\n    addresses: [255.255.255.255]\n",
            [("spec.yaml:5:17:", "is the broadcast address")]),
        DiagnosticCase(
            "IPv4-mapped address", header + "nodes:\n  - name: a\n    addresses: ['::ffff:198.18.0.1']\n",
            [("spec.yaml:5:17:", "is an IPv4-mapped IPv6 address (give the IPv4 address itself)")]),
        DiagnosticCase(
            "label not a string",
            header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n    labels: { tier: 1 }\n",
            [("spec.yaml:6:21:", "label 'tier' of node 'a' must be a string, found the integer 1; quote it: \"1\"")]),
        DiagnosticCase(
            "label boolean", header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n    labels: { public: yes }\n",
            [("spec.yaml:6:23:", "found the boolean yes")]),
        DiagnosticCase(
            "labels not a mapping", header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n    labels: [web]\n",
            [("spec.yaml:6:13:", "'labels' of node 'a' must be a mapping, found a list")]),
        DiagnosticCase(
            "label key not a string",
            header + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n    labels: { [x]: y }\n",
            [("spec.yaml:6:15:", "a list or mapping may not be used as a mapping key")]),
        DiagnosticCase(
            "duplicate node name", twoNodes + "  - name: a\n    addresses: [198.18.0.3]\n",
            [("spec.yaml:10:11:", "duplicate node name 'a'; it is first defined at spec.yaml:4:11")]),
        DiagnosticCase(
            "duplicate address", twoNodes + "  - name: c\n    addresses: [198.18.0.2]\n",
            [("spec.yaml:11:17:", "address 198.18.0.2 of node 'c' is already used by node 'b' at spec.yaml:8:17")]),
        DiagnosticCase(
            "duplicate address, other spelling",
            header
                + "nodes:\n  - name: a\n    addresses: ['2001:db8::1']\n  - name: b\n    addresses: ['2001:0db8:0:0::1']\n",
            [("spec.yaml:7:17:", "address 2001:db8::1 of node 'b' is already used by node 'a'")]),

        // Flows.
        DiagnosticCase(
            "flows not a list", twoNodes + "flows: a-to-b\n",
            [("spec.yaml:10:8:", "'flows' must be a list, found the string 'a-to-b'")]),
        DiagnosticCase(
            "unknown flow key",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    port: [tcp/80]\n",
            [("spec.yaml:14:5:", "unknown key 'port' in a flow; allowed keys: name, from, to, ports, cipher")]),
        DiagnosticCase(
            "flow without name", twoNodes + "flows:\n  - from: { tier: web }\n    to: { tier: app }\n",
            [("spec.yaml:11:5:", "a flow needs a 'name'")]),
        DiagnosticCase(
            "flow without to", twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n",
            [("spec.yaml:11:5:", "flow 'f' needs 'to', a label selector")]),
        DiagnosticCase(
            "invalid flow name",
            twoNodes + "flows:\n  - name: 'web to app'\n    from: { tier: web }\n    to: { tier: app }\n",
            [("spec.yaml:11:11:", "invalid flow name 'web to app'")]),
        DiagnosticCase(
            "selector not a mapping", twoNodes + "flows:\n  - name: f\n    from: web\n    to: { tier: app }\n",
            [("spec.yaml:12:11:", "'from' of flow 'f' must be a mapping, found the string 'web'")]),
        DiagnosticCase(
            "selector value not a string",
            twoNodes + "flows:\n  - name: f\n    from: { tier: [web] }\n    to: { tier: app }\n",
            [("spec.yaml:12:19:", "selector label 'tier' of flow 'f' must be a string, found a list")]),
        DiagnosticCase(
            "port out of range",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [tcp/70000]\n",
            [("spec.yaml:14:13:", "port 70000 in 'tcp/70000' is out of range; ports are 1 to 65535")]),
        DiagnosticCase(
            "port zero",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [udp/0]\n",
            [("spec.yaml:14:13:", "port 0 in 'udp/0' is out of range")]),
        DiagnosticCase(
            "port not a number",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [sctp/ab]\n",
            [("spec.yaml:14:13:", "malformed port 'sctp/ab': 'ab' is not a number")]),
        DiagnosticCase(
            "port missing after slash",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [tcp/]\n",
            [("spec.yaml:14:13:", "malformed port 'tcp/'")]),
        DiagnosticCase(
            "unknown protocol",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [ftp/21]\n",
            [("spec.yaml:14:13:", "unknown protocol 'ftp' in port 'ftp/21'; use one of tcp, udp, sctp, icmp, icmpv6")]),
        DiagnosticCase(
            "icmp with a port",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [icmp/8]\n",
            [("spec.yaml:14:13:", "'icmp' has no ports; write 'icmp' alone")]),
        DiagnosticCase(
            "port range",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [tcp/80-90]\n",
            [("spec.yaml:14:13:", "port ranges are not supported in 'tcp/80-90'")]),
        DiagnosticCase(
            "port as integer",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: [8080]\n",
            [("spec.yaml:14:13:", "a port of flow 'f' must be a string, found the integer 8080")]),
        DiagnosticCase(
            "empty ports",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    ports: []\n",
            [("spec.yaml:14:12:", "flow 'f' has an empty 'ports' list; remove 'ports' to protect all traffic")]),
        DiagnosticCase(
            "unknown flow cipher",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    cipher: des\n",
            [("spec.yaml:14:13:", "unknown cipher 'des'; use one of aes-gcm-128")]),
        DiagnosticCase(
            "duplicate flow name",
            twoNodes
                + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n  - name: f\n    from: { tier: app }\n    to: { tier: web }\n",
            [("spec.yaml:14:11:", "duplicate flow name 'f'; it is first defined at spec.yaml:11:11")]),
        DiagnosticCase(
            "flow to itself", twoNodes + "flows:\n  - name: f\n    from: { name: a }\n    to: { tier: web }\n",
            [("spec.yaml:11:11:", "flow 'f' selects only node 'a' on both sides")]),
        DiagnosticCase(
            "selector matches nothing",
            twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: db }\n",
            [("spec.yaml:13:9:", "warning: 'to' of flow 'f' matches no node: {tier: db}")], compiles: true),
        DiagnosticCase(
            "no shared family",
            header
                + "nodes:\n  - name: a\n    addresses: [198.18.0.1]\n  - name: b\n    addresses: ['2001:db8::2']\nflows:\n  - name: f\n    from: { name: a }\n    to: { name: b }\n",
            [
                (
                    "spec.yaml:9:11:",
                    "warning: flow 'f': nodes 'a' and 'b' share no address family, so no channel joins them"
                )
            ], compiles: true),
        DiagnosticCase(
            "cipher conflict",
            twoNodes
                + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n    cipher: aes-gcm-128\n  - name: g\n    from: { name: b }\n    to: { name: a }\n    ports: [tcp/22]\n",
            [
                (
                    "spec.yaml:15:11:",
                    "flows 'f' (spec.yaml:11:11) and 'g' (spec.yaml:15:11) put different ciphers on nodes 'a' and 'b': aes-gcm-128 and aes-gcm-256; give both flows the same cipher"
                )
            ]),

        // Bounds.
        DiagnosticCase(
            "alias expansion bomb",
            """
            version: 1
            cluster: x
            a: &a [x, x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
            f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
            h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
            i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
            """, [("spec.yaml:", "the document expands to more than 1000000 nodes through aliases")]),
        DiagnosticCase(
            "alias as a key", "version: 1\ncluster: x\na: &a [1, 2]\nb: { *a : 1 }\n",
            [("spec.yaml:4:6:", "an alias may not be used as a mapping key")]),
        DiagnosticCase(
            "deep nesting", "version: 1\ncluster: x\nflows: " + String(repeating: "[", count: 100_000) + "\n",
            [("spec.yaml:3:72:", "collections are nested more than 64 levels deep")]),
        DiagnosticCase(
            "deep block sequence", "version: 1\ncluster: x\nnodes:\n" + String(repeating: "- ", count: 10_000) + "x\n",
            [("spec.yaml:4:", "collections are nested more than 64 levels deep")]),

        // Several files.
        DiagnosticCase(
            "cluster disagrees across files",
            files: [("a.yaml", "version: 1\ncluster: shop\n"), ("b.yaml", "version: 1\ncluster: shop-2\n")],
            [
                (
                    "b.yaml:2:10:",
                    "'cluster' differs from the one at a.yaml:2:10; every file that sets 'cluster' must set it alike"
                )
            ]),
        DiagnosticCase(
            "defaults disagree across files",
            files: [("b.yaml", "defaults: { drain: 5s }\n"), ("a.yaml", header + "defaults: { drain: 6s }\n")],
            [("b.yaml:1:1:", "'defaults' differs from the one at a.yaml:3:1")]),
        DiagnosticCase(
            "duplicate node across files",
            files: [("b.yaml", "nodes:\n  - name: a\n    addresses: [198.18.0.9]\n"), ("a.yaml", twoNodes)],
            [("b.yaml:2:11:", "duplicate node name 'a'; it is first defined at a.yaml:4:11")]),
        DiagnosticCase(
            "duplicate address across files",
            files: [("a.yaml", twoNodes), ("z.yaml", "nodes:\n  - name: z\n    addresses: [198.18.0.1]\n")],
            [("z.yaml:3:17:", "address 198.18.0.1 of node 'z' is already used by node 'a' at a.yaml:5:17")]),
        DiagnosticCase(
            "cipher conflict across files",
            files: [
                ("a.yaml", twoNodes + "flows:\n  - name: f\n    from: { tier: web }\n    to: { tier: app }\n"),
                (
                    "b.yaml",
                    "flows:\n  - name: g\n    from: { tier: app }\n    to: { tier: web }\n    cipher: chacha20-poly1305\n"
                ),
            ],
            [("b.yaml:5:13:", "flows 'f' (a.yaml:11:11) and 'g' (b.yaml:2:11) put different ciphers")]),
    ]

    @Test("each problem is reported at its place", arguments: cases)
    func reports(_ testCase: DiagnosticCase) {
        let result = SpecTesting.load(testCase.files)
        let descriptions = result.diagnostics.map(\.description)
        for expected in testCase.expected {
            #expect(
                descriptions.contains { $0.hasPrefix(expected.location) && $0.contains(expected.message) },
                "expected \(expected.location) \(expected.message)\n  got:\n    \(descriptions.joined(separator: "\n    "))"
            )
        }
        #expect(result.isValid == testCase.compiles, "\(descriptions)")
        if testCase.compiles {
            #expect(result.errors.isEmpty)
        }
    }

    @Test("every problem of a spec is reported in one run, sorted")
    func reportsEverything() {
        let result = SpecTesting.load([
            ("b.yaml", "nodes:\n  - name: B\n    addresses: [198.18.0.1]\n"),
            ("a.yaml", "version: 3\ncluster: x\ndefaults: { drain: 5x, cipher: rot13 }\n"),
        ])
        #expect(result.intent == nil)
        #expect(
            result.diagnostics.map(\.description) == [
                "a.yaml:1:10: unsupported spec version 3; this Meshward reads version 1",
                "a.yaml:3:20: malformed duration '5x': unknown unit 'x' (use d, h, m, s or ms) in 'drain'; write e.g. '90s', '5m', '24h', '7d' or '1h30m'",
                "a.yaml:3:32: unknown cipher 'rot13'; use one of aes-gcm-128, aes-gcm-256, chacha20-poly1305, aes-cbc-hmac-sha256",
                "b.yaml:2:11: invalid node name 'B': use 1 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
            ])
    }

    @Test("a warning prints with its severity")
    func warningDescription() {
        let diagnostic = Diagnostic(severity: .warning, file: "f.yaml", line: 3, column: 7, message: "matches no node")
        #expect(diagnostic.description == "f.yaml:3:7: warning: matches no node")
    }
}
