import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Moving a fleet saved by an earlier Meshward, as one JSON document, into the SQLite file.
extension SimulatedFleetFile {
    /// The JSON file an earlier Meshward kept in place of this one: the same name with `.json`
    /// for `.sqlite` (`simulated-fleet.json` beside `simulated-fleet.sqlite`); nil for a file
    /// not named `*.sqlite`.
    var legacyJSONPath: String? {
        guard path.hasSuffix(".sqlite") else { return nil }
        return String(path.dropLast(".sqlite".count)) + ".json"
    }

    /// Where the JSON file goes once its fleet is in the SQLite file. It is renamed, not
    /// removed, so that an operator can still look at what was migrated; deleting it is safe.
    static let migratedSuffix = ".migrated"

    /// Migrates the JSON file when there is one: decodes it, writes its fleet to this file (all
    /// of it, in one transaction), then renames it with `migratedSuffix`. Returns nil when there
    /// is nothing to migrate. The JSON file is refused, like this one, when group or others may
    /// access it. A crash before the rename leaves both files; the next load reads the SQLite
    /// one and does not migrate again.
    func migrateLegacyJSON() throws(SimulatedFleetPersistenceError) -> Baseline? {
        guard let legacyPath = legacyJSONPath, try Self.requirePrivate(legacyPath) else { return nil }
        let legacy = SimulatedFleetFile(path: legacyPath)
        let state: SimulatedFleetState
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: legacyPath))
            state = try JSONDecoder().decode(SimulatedFleetState.self, from: data)
        } catch {
            throw SimulatedFleetPersistenceError(
                path: legacyPath, reason: "is not a simulated fleet (\(error)); move it away to start empty")
        }
        let written = try write(state, since: nil)
        guard rename(legacyPath, legacyPath + Self.migratedSuffix) == 0 else {
            throw SimulatedFleetPersistenceError(
                path: legacy.path,
                reason: "was migrated to \(path) but cannot be renamed: \(String(cString: strerror(errno)))")
        }
        return written.baseline
    }
}
