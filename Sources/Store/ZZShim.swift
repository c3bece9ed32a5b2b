// TEMPORARY SHIM (removed at merge)
import Foundation
import Logging
import MeshwardCore

public final class StateStore: Sendable {
    public static func open(directory: String, masterKeyPath: String? = nil, logger: Logger) throws -> StateStore { fatalError() }
    public static func inMemory(masterKey: KeyMaterial, logger: Logger) throws -> StateStore { fatalError() }
    public var directory: String? { nil }
    public func acquireLease(holder: String, ttl: Duration, now: Date) throws {}
    public func renewLease(holder: String, ttl: Duration, now: Date) throws {}
    public func releaseLease(holder: String) throws {}
    public func loadChannels() throws -> [ChannelID: ChannelRecord] { [:] }
    public func issueGeneration(for channel: ChannelID, cipher: Cipher, source: IPAddress, destination: IPAddress, avoiding: Set<SPI>, now: Date) throws -> Generation { fatalError() }
    public func update(_ records: [ChannelRecord]) throws {}
    public func removeChannel(_ id: ChannelID) throws {}
    public func recordRevision(hash: String, source: String, summary: String, at: Date) throws -> RevisionRecord { fatalError() }
    public func revisions(limit: Int?) throws -> [RevisionRecord] { [] }
    public func appendJournal(_ entries: [JournalEntry]) throws {}
    public func journal(limit: Int?, node: String?) throws -> [JournalEntry] { [] }
    public func setMetadata(_ key: String, _ value: String?) throws {}
    public func metadata(_ key: String) throws -> String? { nil }
}
public struct RevisionRecord: Sendable, Hashable { public var id: Int64; public var hash: String; public var source: String; public var summary: String; public var appliedAt: Date }
public struct JournalEntry: Sendable, Hashable {
    public var id: Int64?; public var node: String; public var operation: String; public var target: String; public var channel: ChannelID?; public var plannedAt: Date; public var appliedAt: Date?; public var result: String; public var revision: Int64?
    public init(id: Int64? = nil, node: String, operation: String, target: String, channel: ChannelID?, plannedAt: Date, appliedAt: Date?, result: String, revision: Int64?) { self.id = id; self.node = node; self.operation = operation; self.target = target; self.channel = channel; self.plannedAt = plannedAt; self.appliedAt = appliedAt; self.result = result; self.revision = revision }
}
public struct ChannelRecord: Sendable, Hashable {
    public var id: ChannelID; public var step: String; public var stepChangedAt: Date; public var generations: [Generation]
    public init(id: ChannelID, step: String, stepChangedAt: Date, generations: [Generation]) { self.id = id; self.step = step; self.stepChangedAt = stepChangedAt; self.generations = generations }
}
public struct Generation: Sendable, Hashable {
    public let channel: ChannelID; public let number: Int; public let spi: SPI; public let cipher: Cipher; public let key: KeyMaterial; public let source: IPAddress; public let destination: IPAddress; public let createdAt: Date
    public var state: GenerationState; public var activatedAt: Date?; public var supersededAt: Date?; public var retiredAt: Date?
    public init(channel: ChannelID, number: Int, spi: SPI, cipher: Cipher, key: KeyMaterial, source: IPAddress, destination: IPAddress, createdAt: Date, state: GenerationState, activatedAt: Date? = nil, supersededAt: Date? = nil, retiredAt: Date? = nil) {
        self.channel = channel; self.number = number; self.spi = spi; self.cipher = cipher; self.key = key; self.source = source; self.destination = destination; self.createdAt = createdAt; self.state = state; self.activatedAt = activatedAt; self.supersededAt = supersededAt; self.retiredAt = retiredAt }
}
public enum GenerationState: String, Sendable, Hashable, Codable, CaseIterable { case pending, active, retiring, retired }
