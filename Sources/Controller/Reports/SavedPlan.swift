import Foundation
import Reconciler

/// What `plan --out FILE` writes and `apply FILE` reads: the plan, the spec it was made from
/// (the spec's text, which never holds key material), and the fingerprints that tell whether
/// the fleet moved on. Written 0600; keys are never in it (the plan shows placeholders and
/// SPIs, never key bytes or key fingerprints).
public struct SavedPlan: Codable, Sendable, Equatable {
    /// A spec file as the plan read it.
    public struct SpecFile: Codable, Sendable, Equatable {
        /// The path given to `plan`, for messages.
        public var path: String
        public var text: String
    }

    /// What marks the file as a saved plan (a spec cannot have this key: specs reject unknown keys).
    public static let kindValue = "meshward-saved-plan"
    /// The version this build writes and reads.
    public static let currentFormatVersion = 1

    public var kind: String
    public var formatVersion: Int
    public var createdAt: Date
    /// The Meshward command line that made it, for people reading the file.
    public var madeBy: String
    public var specFiles: [SpecFile]
    /// The plan itself, as `plan --output json` prints it (revision, target, fingerprints).
    public var plan: PlanDocument

    public init(createdAt: Date, madeBy: String, specFiles: [SpecFile], plan: PlanDocument) {
        kind = Self.kindValue
        formatVersion = Self.currentFormatVersion
        self.createdAt = createdAt
        self.madeBy = madeBy
        self.specFiles = specFiles
        self.plan = plan
    }

    /// The file's bytes: the same snake_case JSON as every other document.
    public func encoded() throws -> Data {
        Data(try DocumentEncoding.json(self).utf8)
    }

    /// Reads a saved plan. Nil when `data` is not one (a spec, say); throws
    /// `ControllerError.unreadablePlan` when it is one this build cannot use.
    public static func decode(_ data: Data, file: String) throws -> SavedPlan? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            object["kind"] as? String == kindValue
        else { return nil }
        guard let version = object["format_version"] as? Int, version == currentFormatVersion else {
            throw ControllerError.unreadablePlan(
                file: file,
                reason: "format_version \(object["format_version"].map { "\($0)" } ?? "missing"); this Meshward "
                    + "reads version \(currentFormatVersion). Make the plan again with this version")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(SavedPlan.self, from: data)
        } catch {
            throw ControllerError.unreadablePlan(file: file, reason: "it is damaged (\(error))")
        }
    }
}
