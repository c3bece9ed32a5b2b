import MeshwardCore

/// The direction of a policy. Meshward writes `out` and `in`; `forward` is observed, never written.
public enum PolicyDirection: String, Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    case inbound = "in"
    case outbound = "out"
    case forward = "fwd"

    public var description: String { rawValue }

    public static func < (lhs: PolicyDirection, rhs: PolicyDirection) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A kernel traffic selector (`xfrm_selector`): host prefixes, protocol and ports.
public struct PolicySelector: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var source: IPPrefix
    public var destination: IPPrefix
    /// Which packets between the prefixes; `TrafficMatch.any` for all.
    public var traffic: TrafficMatch

    public init(source: IPPrefix, destination: IPPrefix, traffic: TrafficMatch = .any) {
        self.source = source
        self.destination = destination
        self.traffic = traffic
    }

    public var family: AddressFamily { destination.family }

    /// A 64-bit mix of the selector, for hashing.
    public var mixedBits: UInt64 {
        Bits.mix(source.mixedBits ^ Bits.mix(destination.mixedBits ^ Bits.mix(traffic.mixedBits)))
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(mixedBits) }

    public var description: String { "src \(source) dst \(destination) \(traffic)" }

    public static func < (lhs: PolicySelector, rhs: PolicySelector) -> Bool {
        (lhs.source, lhs.destination, lhs.traffic) < (rhs.source, rhs.destination, rhs.traffic)
    }
}

/// A policy's template (`xfrm_user_tmpl`): ESP in transport mode.
public struct PolicyTemplate: Sendable, Hashable, CustomStringConvertible {
    /// The tunnel endpoints; for transport mode the kernel takes them from the packet, and both
    /// are the unspecified address of the family.
    public var source: IPAddress
    public var destination: IPAddress
    /// The pinned SPI of an outbound template; nil matches any SPI (inbound templates never pin).
    public var spi: SPI?
    public var reqid: Reqid
    /// `level use` in iproute2: the packet may also pass without this transform.
    public var isOptional: Bool

    public init(family: AddressFamily, spi: SPI?, reqid: Reqid, isOptional: Bool) {
        self.source = .unspecified(family)
        self.destination = .unspecified(family)
        self.spi = spi
        self.reqid = reqid
        self.isOptional = isOptional
    }

    public init(source: IPAddress, destination: IPAddress, spi: SPI?, reqid: Reqid, isOptional: Bool) {
        self.source = source
        self.destination = destination
        self.spi = spi
        self.reqid = reqid
        self.isOptional = isOptional
    }

    public var description: String {
        "tmpl esp transport reqid \(reqid)" + (spi.map { " spi \($0.hex)" } ?? "")
            + (isOptional ? " level use" : " level required")
    }
}

/// Names one policy: the kernel finds a policy by selector and direction (marks are not used).
public struct PolicyIdentifier: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var selector: PolicySelector
    public var direction: PolicyDirection

    public init(selector: PolicySelector, direction: PolicyDirection) {
        self.selector = selector
        self.direction = direction
    }

    public var description: String { "\(selector) dir \(direction)" }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(selector.mixedBits &+ (direction == .inbound ? 1 : direction == .outbound ? 2 : 3))
    }

    public static func < (lhs: PolicyIdentifier, rhs: PolicyIdentifier) -> Bool {
        (lhs.selector, lhs.direction) < (rhs.selector, rhs.direction)
    }
}

/// An IPsec policy with one ESP template, as Meshward writes it and as a node reports it.
public struct SecurityPolicy: Sendable, Hashable, CustomStringConvertible {
    public var selector: PolicySelector
    public var direction: PolicyDirection
    /// Lower values take precedence.
    public var priority: UInt32
    /// The ESP template. A policy Meshward owns has exactly one; its reqid marks ownership.
    public var template: PolicyTemplate

    /// Meshward's default policy priority: above a typical catch-all (strongSwan uses larger
    /// values for wider selectors), below nothing an operator would put in front of it on purpose.
    public static let defaultPriority: UInt32 = 1_000

    public init(
        selector: PolicySelector, direction: PolicyDirection, priority: UInt32 = defaultPriority,
        template: PolicyTemplate
    ) {
        self.selector = selector
        self.direction = direction
        self.priority = priority
        self.template = template
    }

    public var identifier: PolicyIdentifier { PolicyIdentifier(selector: selector, direction: direction) }

    public var description: String { "policy \(selector) dir \(direction) priority \(priority) \(template)" }
}
