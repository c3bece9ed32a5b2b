import Foundation
import Testing

@testable import DesiredState

@Suite("Loading files and directories")
struct FileLoadingTests {
    private var fixtures: String {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.path ?? "Fixtures"
    }

    @Test("a directory merges its yaml, yml and json files and ignores the rest")
    func directory() throws {
        let result = SpecLoader().load(paths: [fixtures + "/split"])
        let intent = try #require(result.intent, "\(result.diagnostics)")
        #expect(intent.cluster == "fixture")
        #expect(intent.nodes.map(\.name) == ["n1", "n2"])
        #expect(intent.channels.map(\.id.description) == ["n1->n2/ipv4", "n2->n1/ipv4"])
    }

    @Test("a file given twice, or inside a given directory, is read once")
    func duplicatesIgnored() {
        let result = SpecLoader().load(paths: [fixtures + "/split", fixtures + "/split/a-nodes.yaml"])
        #expect(result.isValid, "\(result.diagnostics)")
    }

    @Test("a directory without spec files is an error")
    func emptyDirectory() {
        let result = SpecLoader().load(paths: [fixtures + "/no-specs"])
        #expect(
            result.diagnostics.map(\.description)
                == ["\(fixtures)/no-specs:1:1: directory has no spec files (*.yaml, *.yml, *.json)"])
    }

    @Test("a missing file is an error naming it")
    func missingFile() {
        let result = SpecLoader().load(paths: ["/nonexistent/meshward.yaml"])
        #expect(
            result.diagnostics.map(\.description)
                == ["/nonexistent/meshward.yaml:1:1: cannot read spec: no such file or directory"])
    }

    @Test("no path at all is an error")
    func noPaths() {
        #expect(SpecLoader().load(paths: []).diagnostics.first?.message.contains("no spec given") == true)
    }

    @Test("a file over 16 MiB is refused before it is parsed")
    func hugeFile() throws {
        let directory = try SpecTesting.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("huge.yaml").path
        let line = Data("# padding padding padding padding padding padding padding padding padding\n".utf8)
        var data = Data(capacity: 17 << 20)
        while data.count <= 16 << 20 { data.append(line) }
        try data.write(to: URL(fileURLWithPath: path))
        let result = SpecLoader().load(paths: [path])
        #expect(result.diagnostics.count == 1)
        #expect(result.diagnostics.first?.message.contains("over the limit of 16777216 bytes") == true)
    }

    @Test("a file that is not UTF-8 is an error")
    func notUTF8() throws {
        let directory = try SpecTesting.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("latin1.yaml").path
        try Data([0x63, 0x3A, 0x20, 0xE9, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: path))
        #expect(
            SpecLoader().load(paths: [path]).diagnostics.map(\.description) == [
                "\(path):1:1: spec file is not UTF-8 text"
            ])
    }

    @Test("an unreadable file is an error", .enabled(if: getuid() != 0, "root reads every file"))
    func unreadable() throws {
        let directory = try SpecTesting.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("secret.yaml").path
        try Data("version: 1\n".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0)
        #expect(SpecLoader().load(paths: [path]).diagnostics.first?.message.contains("cannot read spec file") == true)
    }
}
