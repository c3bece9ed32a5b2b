import Foundation
import Yams

/// Reads spec files and directories, validates them and compiles them into a `FleetIntent`.
///
/// Loading never stops at the first problem: every file is read and every problem reported,
/// each located at `path:line:column`. Apart from reading the given files it has no effects.
public struct SpecLoader: Sendable {
    /// The file name extensions read from a directory.
    public static let specExtensions: Set<String> = ["yaml", "yml", "json"]

    /// Creates a loader.
    public init() {}

    /// Loads the spec made of `paths`: files, and directories whose `*.yaml`, `*.yml` and `*.json`
    /// files (not hidden, not in subdirectories) are all read. A file named twice is read once.
    ///
    /// The result's intent is nil when any error was found; the diagnostics are sorted by file,
    /// then line, then column.
    public func load(paths: [String]) -> SpecLoadResult {
        var log = DiagnosticLog()
        var sources: [(path: String, text: String)] = []
        if paths.isEmpty {
            log.error(
                "no spec given; name at least one spec file or directory", at: SourceLocation(file: "<command line>"))
        }
        var seen = Set<String>()
        for path in paths {
            for file in specFiles(at: path, log: &log) {
                let key = URL(fileURLWithPath: file).standardizedFileURL.resolvingSymlinksInPath().path
                guard seen.insert(key).inserted else { continue }
                if let text = read(file, log: &log) { sources.append((file, text)) }
            }
        }
        return load(sources: sources, log: log)
    }

    /// Loads a spec from files already read (a spec `apply` recorded, a saved plan's), each
    /// named by the path its diagnostics will carry.
    public func load(sources: [SpecSource]) -> SpecLoadResult {
        load(sources: sources.map { ($0.path, $0.text) })
    }

    /// Loads a spec from texts already in memory, each named by the path its diagnostics will carry.
    func load(
        sources: [(path: String, text: String)], log initialLog: DiagnosticLog = DiagnosticLog()
    )
        -> SpecLoadResult
    {
        var log = initialLog
        var files: [SpecFile] = []
        for source in sources {
            if let file = parse(source.text, path: source.path, log: &log) { files.append(file) }
        }
        guard !sources.isEmpty else { return SpecLoadResult(intent: nil, diagnostics: log.sorted) }
        let merged = MergedSpec.merge(files, log: &log)
        var intent = FleetCompiler.compile(merged, log: &log)
        intent?.sources = sources.map { SpecSource(path: $0.path, text: $0.text) }
        return SpecLoadResult(intent: log.hasErrors ? nil : intent, diagnostics: log.sorted)
    }

    // MARK: Files

    private func specFiles(at path: String, log: inout DiagnosticLog) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            log.error("cannot read spec: no such file or directory", at: SourceLocation(file: path))
            return []
        }
        guard isDirectory.boolValue else { return [path] }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            log.error("cannot list spec directory: \(Self.reason(error))", at: SourceLocation(file: path))
            return []
        }
        let base = path.hasSuffix("/") ? path : path + "/"
        let files = names.filter { name in
            guard !name.hasPrefix("."), let dot = name.lastIndex(of: ".") else { return false }
            let ext = String(name[name.index(after: dot)...]).lowercased()
            guard Self.specExtensions.contains(ext) else { return false }
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: base + name, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }.sorted().map { base + $0 }
        if files.isEmpty {
            log.error("directory has no spec files (*.yaml, *.yml, *.json)", at: SourceLocation(file: path))
        }
        return files
    }

    private func read(_ path: String, log: inout DiagnosticLog) -> String? {
        let location = SourceLocation(file: path)
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? NSNumber, size.intValue > YAMLGuard.maximumFileSize
        {
            log.error(
                "spec file is \(size.intValue) bytes, over the limit of \(YAMLGuard.maximumFileSize) bytes "
                    + "(16 MiB); split it into several files", at: location)
            return nil
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let reason = FileManager.default.isReadableFile(atPath: path) ? "cannot open it" : "permission denied"
            log.error("cannot read spec file: \(reason)", at: location)
            return nil
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: YAMLGuard.maximumFileSize + 1) ?? Data()
        } catch {
            log.error("cannot read spec file: \(Self.reason(error))", at: location)
            return nil
        }
        if data.count > YAMLGuard.maximumFileSize {
            log.error(
                "spec file is over the limit of \(YAMLGuard.maximumFileSize) bytes (16 MiB); split it into "
                    + "several files", at: location)
            return nil
        }
        guard var text = String(data: data, encoding: .utf8) else {
            log.error("spec file is not UTF-8 text", at: location)
            return nil
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text
    }

    // MARK: YAML

    private func parse(_ text: String, path: String, log: inout DiagnosticLog) -> SpecFile? {
        let start = SourceLocation(file: path)
        if text.utf8.count > YAMLGuard.maximumFileSize {
            log.error(
                "spec file is over the limit of \(YAMLGuard.maximumFileSize) bytes (16 MiB); split it into "
                    + "several files", at: start)
            return nil
        }
        if let refusal = YAMLGuard.scan(text) {
            log.error(refusal.message, at: SourceLocation(file: path, line: refusal.line, column: refusal.column))
            return nil
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            let (location, message) = Self.describe(error, path: path)
            log.error(message, at: location)
            return nil
        } catch {
            log.error("not valid YAML: \(error)", at: start)
            return nil
        }
        guard let root, !Self.isNull(root) else {
            log.error(
                "spec file is empty; a spec file is a mapping with keys such as 'version', 'cluster', "
                    + "'nodes' and 'flows'", at: start)
            return nil
        }
        if let refusal = YAMLGuard.checkExpansion(root, budget: YAMLGuard.nodeBudget(byteCount: text.utf8.count)) {
            log.error(refusal.message, at: SourceLocation(file: path, line: refusal.line, column: refusal.column))
            return nil
        }
        var parser = SpecFileParser(path: path, log: log)
        let file = parser.parse(root)
        log = parser.log
        return file
    }

    private static func isNull(_ node: Node) -> Bool {
        if case .scalar(let scalar) = node, scalar.style == .plain, node.tagName == .null { return true }
        return false
    }

    private static func describe(_ error: YamlError, path: String) -> (SourceLocation, String) {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: path, line: mark.line, column: mark.column) }
        func withContext(_ problem: String, _ context: YamlError.Context?) -> String {
            guard let context else { return "not valid YAML: \(problem)" }
            return
                "not valid YAML: \(problem) (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            if problem.hasPrefix("Maximum nesting level") {
                // libyaml's own limit, reached before the composed tree can be checked.
                return (at(mark), YAMLGuard.depthMessage)
            }
            return (at(mark), withContext(problem, context))
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return (at(context.mark), "duplicate key \(keys) in one mapping; each key may appear once")
        case .reader(let problem, _, _, _):
            return (SourceLocation(file: path), "not readable as YAML: \(problem)")
        default:
            return (SourceLocation(file: path), "not valid YAML: \(error)")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError {
            return underlying.localizedDescription
        }
        return nsError.localizedDescription
    }
}
