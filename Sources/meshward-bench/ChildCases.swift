import ArgumentParser
import Foundation

/// Runs benchmark cases each in a child process of this executable, so that each case's peak
/// memory is its own: `meshward-bench SUBCOMMAND --only CASE`. The child's output is passed
/// through; its last JSON line is returned.
enum ChildCases {
    static func run(_ subcommand: String, cases: [String], extraArguments: [String] = []) throws -> [[String: Any]] {
        var results: [[String: Any]] = []
        for item in cases {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            process.arguments = [subcommand, "--only", item] + extraArguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            let text = String(decoding: data, as: UTF8.self)
            print(text, terminator: "")
            guard process.terminationStatus == 0,
                let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else {
                throw ValidationError("case \(item) failed (exit \(process.terminationStatus))")
            }
            results.append(object)
        }
        return results
    }
}
