import Foundation

/// The samples of a Prometheus text exposition, for checking values by name and labels. For
/// tests only.
public struct Exposition: Sendable {
    /// One line: a series and its value.
    public struct Sample: Hashable, Sendable {
        public let name: String
        public let labels: [String: String]
        public let value: Double
    }

    public let samples: [Sample]
    /// The names declared by `# TYPE` lines, with their types.
    public let types: [String: String]
    /// The names described by `# HELP` lines, with their help text (unescaped).
    public let help: [String: String]

    /// Reads the exposition `text`.
    public init(_ text: String) {
        var samples: [Sample] = []
        var types: [String: String] = [:]
        var help: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let parts = line.dropFirst("# HELP ".count).split(separator: " ", maxSplits: 1)
                if let name = parts.first {
                    help[String(name)] = parts.count == 2 ? Self.unescapeHelp(parts[1]) : ""
                }
                continue
            }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") || line.isEmpty { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space]
            var labels: [String: String] = [:]
            let name: Substring
            if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                name = series[..<open]
                let inner = series[series.index(after: open)..<series.index(before: series.endIndex)]
                for pair in inner.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            } else {
                name = series
            }
            samples.append(Sample(name: String(name), labels: labels, value: value))
        }
        self.samples = samples
        self.types = types
        self.help = help
    }

    /// A help text as the exposition format escapes it (`\\` and `\n`), read back.
    static func unescapeHelp(_ text: Substring) -> String {
        var result = ""
        var escaped = false
        for character in text {
            if escaped {
                result.append(character == "n" ? "\n" : character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// The value of the one sample with `name` whose labels include `labels`; nil when there is
    /// none or more than one.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }
        return matching.count == 1 ? matching[0].value : nil
    }

    /// Every sample of `name`.
    public func all(_ name: String) -> [Sample] { samples.filter { $0.name == name } }

    /// Every name a query may use: each declared metric, and a histogram's `_bucket`, `_sum`
    /// and `_count` series.
    public var queryableNames: Set<String> {
        var names = Set(types.keys)
        for (name, type) in types where type == "histogram" {
            names.formUnion([name + "_bucket", name + "_sum", name + "_count"])
        }
        return names
    }
}
