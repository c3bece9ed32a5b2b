import DesiredState
import Foundation
import Testing

@Suite("Example specs")
struct ExampleSpecTests {
    /// Every spec under specs/: specs are grouped in folders (`specs/examples/`); in a group, each
    /// spec file is one spec and each folder is one spec split across files.
    static var specs: [String] {
        let root = SpecTesting.repositoryRoot.appendingPathComponent("specs").path
        let manager = FileManager.default
        func entries(_ directory: String) -> [(path: String, isDirectory: Bool)] {
            let names = (try? manager.contentsOfDirectory(atPath: directory))?.sorted() ?? []
            return names.filter { !$0.hasPrefix(".") }.map { name in
                var isDirectory: ObjCBool = false
                _ = manager.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
                return (directory + "/" + name, isDirectory.boolValue)
            }
        }
        var found: [String] = []
        for group in entries(root) where group.isDirectory {
            for entry in entries(group.path) {
                if entry.isDirectory || SpecLoader.specExtensions.contains((entry.path as NSString).pathExtension) {
                    found.append(entry.path)
                }
            }
        }
        return found
    }

    @Test("the examples are there")
    func examplesExist() {
        let names = Self.specs.map { ($0 as NSString).lastPathComponent }
        #expect(names.contains("three-tier.yaml"))
        #expect(names.contains("minimal.yaml"))
        #expect(names.contains("split"))
    }

    @Test("every spec under specs/ validates without warnings", arguments: specs)
    func validates(path: String) {
        let result = SpecLoader().load(paths: [path])
        #expect(result.isValid, "\(result.diagnostics.map(\.description))")
        #expect(result.warnings.isEmpty, "\(result.warnings.map(\.description))")
    }

    @Test("the three-tier example has both families and return traffic")
    func threeTier() throws {
        let path = SpecTesting.repositoryRoot.appendingPathComponent("specs/examples/three-tier.yaml").path
        let intent = try #require(SpecLoader().load(paths: [path]).intent)
        #expect(intent.cluster == "shop")
        #expect(Set(intent.channels.map(\.id.family)) == [.ipv4, .ipv6])
        #expect(
            intent.nodes.allSatisfy { node in
                node.addresses.allSatisfy { $0.description.hasPrefix("198.1") || $0.description.hasPrefix("2001:db8:") }
            })
    }
}
