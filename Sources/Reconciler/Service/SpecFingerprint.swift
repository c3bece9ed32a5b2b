import Foundation

/// A cheap fingerprint of spec files (path, size, modification time), to notice an edit
/// without reading every file on every tick.
struct SpecFingerprint: Equatable {
    private var entries: [String]

    init(paths: [String]) {
        let manager = FileManager.default
        var entries: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else {
                entries.append("\(path): missing")
                continue
            }
            let files: [String]
            if isDirectory.boolValue {
                let names = (try? manager.contentsOfDirectory(atPath: path)) ?? []
                files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }
                    .sorted().map { (path as NSString).appendingPathComponent($0) }
            } else {
                files = [path]
            }
            for file in files {
                let attributes = (try? manager.attributesOfItem(atPath: file)) ?? [:]
                let size = (attributes[.size] as? NSNumber)?.int64Value ?? -1
                let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                entries.append("\(file) \(size) \(modified)")
            }
        }
        self.entries = entries
    }
}
