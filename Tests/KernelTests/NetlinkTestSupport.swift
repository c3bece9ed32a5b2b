import Foundation
import Logging
import MeshwardCore
import MeshwardTestSupport
import Testing

@testable import Kernel

extension TestNamespace {
    static let skipReason: Comment =
        "needs root and `ip netns add` (creating a network namespace is not permitted here)"
}

enum Fixtures {
    static let logger = Logger(label: "meshward.kernel.tests", factory: { _ in SwiftLogNoOpLogHandler() })
    static let reqid = Reqid.meshwardDefault

    static func address(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    static func hosts(_ family: AddressFamily) -> (IPAddress, IPAddress) {
        family == .ipv4
            ? (address("198.18.1.10"), address("198.18.2.20")) : (address("2001:db8::10"), address("2001:db8::20"))
    }

    /// The `index`-th host of a family inside the test ranges.
    static func host(_ family: AddressFamily, _ index: Int) -> IPAddress {
        switch family {
        case .ipv4: address("198.18.\(index / 250 % 250).\(index % 250 + 1)")
        case .ipv6: address("2001:db8::\(String(index / 65536, radix: 16)):\(String(index % 65536, radix: 16))")
        }
    }

    static func policy(
        _ family: AddressFamily, _ index: Int, direction: PolicyDirection = .outbound,
        spi: SPI? = SPI(0x1000), optional: Bool = false, reqid: Reqid = reqid,
        traffic: TrafficMatch = .any
    ) -> SecurityPolicy {
        let local = host(family, 0)
        let remote = host(family, index + 1)
        let selector =
            direction == .outbound
            ? PolicySelector(source: IPPrefix(host: local), destination: IPPrefix(host: remote), traffic: traffic)
            : PolicySelector(source: IPPrefix(host: remote), destination: IPPrefix(host: local), traffic: traffic)
        return SecurityPolicy(
            selector: selector, direction: direction,
            template: PolicyTemplate(
                family: family, spi: direction == .outbound ? spi : nil,
                reqid: reqid, isOptional: optional))
    }

    static func sa(
        _ family: AddressFamily, cipher: Cipher, esn: Bool = true, window: UInt32 = 128,
        spi: SPI = SPI(0x4242), reqid: Reqid = reqid
    ) -> SecurityAssociation {
        let (source, destination) = hosts(family)
        let key = KeyMaterial(bytes: (0..<cipher.keyLength).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        return SecurityAssociation(
            source: source, destination: destination, spi: spi, reqid: reqid, cipher: cipher,
            key: .material(key), replayWindow: window, extendedSequenceNumbers: esn)
    }

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return result
    }
}

/// One policy as `ip xfrm policy` prints it, reduced to what Meshward writes, so that the
/// kernel's own view can be compared with the backend's.
struct IPRoutePolicy: Hashable, CustomStringConvertible {
    var selector: String
    var direction: String
    var priority: String
    var spi: String?
    var reqid: String
    var optional: Bool

    var description: String {
        "\(selector) dir \(direction) priority \(priority) spi \(spi ?? "-") reqid \(reqid)\(optional ? " level use" : "")"
    }

    /// Parses `ip xfrm policy` output: a record starts at each line without leading space.
    static func parse(_ text: String) -> [IPRoutePolicy] {
        var records: [[String]] = []
        for line in text.split(separator: "\n") {
            if line.first?.isWhitespace == false { records.append([]) }
            if !records.isEmpty { records[records.count - 1].append(String(line)) }
        }
        return records.map { lines in
            let words = lines.joined(separator: " ").split(whereSeparator: \.isWhitespace).map(String.init)
            func after(_ word: String) -> String? {
                guard let index = words.firstIndex(of: word), index + 1 < words.count else { return nil }
                return words[index + 1]
            }
            return IPRoutePolicy(
                selector: lines[0].trimmingCharacters(in: .whitespaces), direction: after("dir") ?? "?",
                priority: after("priority") ?? "?", spi: after("spi"), reqid: after("reqid") ?? "?",
                optional: words.contains("use"))
        }
    }

    /// What `ip xfrm policy` prints for `policy`.
    init(_ policy: SecurityPolicy) {
        var selector = "src \(policy.selector.source) dst \(policy.selector.destination)"
        if let transport = policy.selector.traffic.transport {
            selector += " proto \(transport)"
            if let port = policy.selector.traffic.sourcePort { selector += " sport \(port)" }
            if let port = policy.selector.traffic.destinationPort { selector += " dport \(port)" }
        }
        self.init(
            selector: selector, direction: policy.direction.rawValue, priority: "\(policy.priority)",
            spi: policy.template.spi?.hex, reqid: "\(policy.template.reqid.rawValue)",
            optional: policy.template.isOptional)
    }

    init(selector: String, direction: String, priority: String, spi: String?, reqid: String, optional: Bool) {
        self.selector = selector
        self.direction = direction
        self.priority = priority
        self.spi = spi
        self.reqid = reqid
        self.optional = optional
    }
}
