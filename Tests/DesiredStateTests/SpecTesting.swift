import Foundation

@testable import DesiredState

/// Helpers shared by the DesiredState suites.
enum SpecTesting {
    /// Loads in-memory files, each `(path, text)`.
    static func load(_ files: [(String, String)]) -> SpecLoadResult {
        SpecLoader().load(sources: files.map { (path: $0.0, text: $0.1) })
    }

    /// Loads one in-memory file named `spec.yaml`.
    static func load(_ text: String) -> SpecLoadResult { load([("spec.yaml", text)]) }

    /// The standard header: version and cluster.
    static let header = "version: 1\ncluster: test\n"

    /// A directory under the system's temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("meshward-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The repository root, found from this file's path.
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }
}
