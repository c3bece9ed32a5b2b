import DesiredState
import Foundation
import Reconciler

#if canImport(Glibc)
import Glibc
#endif

extension MeshwardController {
    /// The spec files `paths` name, with their text, as `SpecLoader` reads them (a directory's
    /// `*.yaml`, `*.yml` and `*.json`, not hidden, not in subdirectories), for a saved plan.
    public static func specFiles(_ paths: [String]) throws -> [SavedPlan.SpecFile] {
        var files: [SavedPlan.SpecFile] = []
        var seen = Set<String>()
        for path in paths {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            var names = [path]
            if isDirectory.boolValue {
                let base = path.hasSuffix("/") ? path : path + "/"
                names = try FileManager.default.contentsOfDirectory(atPath: path).filter { name in
                    guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { return false }
                    return SpecLoader.specExtensions.contains(String(name[name.index(after: dot)...]).lowercased())
                }.sorted().map { base + $0 }.filter {
                    var nested: ObjCBool = false
                    return FileManager.default.fileExists(atPath: $0, isDirectory: &nested) && !nested.boolValue
                }
            }
            for name in names where seen.insert(URL(fileURLWithPath: name).standardizedFileURL.path).inserted {
                files.append(.init(path: name, text: try String(contentsOfFile: name, encoding: .utf8)))
            }
        }
        return files
    }

    /// Writes a saved plan to `path`, readable by its owner only (0600), replacing what was there
    /// atomically (a reader never sees half a plan).
    public static func write(_ saved: SavedPlan, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(
            ".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        let data = try saved.encoded()
        guard
            FileManager.default.createFile(
                atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600])
        else {
            throw ControllerError.unreadablePlan(file: path, reason: "cannot create \(temporary.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            guard rename(temporary.path, url.path) == 0 else {
                throw ControllerError.unreadablePlan(file: path, reason: String(cString: strerror(errno)))
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// The saved plan in `path`, or nil when the file is not one (a spec file).
    public static func readSavedPlan(_ path: String) throws -> SavedPlan? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let data = FileManager.default.contents(atPath: path)
        else { return nil }
        return try SavedPlan.decode(data, file: path)
    }

    /// The spec a saved plan was made from, compiled again from the text it carries. Throws
    /// `unreadablePlan` when that text no longer compiles to the plan's revision.
    public static func loadSpec(of saved: SavedPlan, file: String) throws -> FleetIntent {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshward-saved-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        var paths: [String] = []
        for (index, spec) in saved.specFiles.enumerated() {
            let name = URL(fileURLWithPath: spec.path).lastPathComponent
            let url = directory.appendingPathComponent("\(index)-\(name)")
            try spec.text.write(to: url, atomically: true, encoding: .utf8)
            paths.append(url.path)
        }
        let intent = try loadSpec(paths).intent
        guard intent.revision == saved.plan.revision else {
            throw ControllerError.unreadablePlan(
                file: file,
                reason: "the spec it carries compiles to revision \(intent.revision.prefix(12)), not the plan's "
                    + "\(saved.plan.revision.prefix(12)); it was edited or made by another Meshward version")
        }
        return intent
    }
}
