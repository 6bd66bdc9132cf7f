import Foundation

/// `tenops-bench [NAME...]`: runs benchmarks and prints their figures. Build it with
/// `-c release` (`make bench`); debug figures mean nothing.
@main
enum Bench {
    static let all: [(name: String, run: @Sendable () async throws -> Void)] = [
        ("kubeapi", KubeAPIBench.run),
        ("apiserver", APIServerBench.run),
        ("agent", AgentBench.run),
        ("node", NodeBench.run),
        ("pair", PairBench.run),
        ("console", ConsoleBench.run),
        ("scale", ScaleBench.run),
        ("takeover", TakeoverBench.run),
    ]

    /// The options after the benchmark names (`tenops-bench pair --runs 5`); each benchmark
    /// reads its own and the others ignore them.
    static var options: [String] { Array(CommandLine.arguments.dropFirst().drop { !$0.hasPrefix("--") }) }

    static func main() async {
        // The agent benchmark starts PostgreSQL through this binary, as `tenops agent` does.
        if CommandLine.arguments.dropFirst().first == AgentBench.execChildCommand { AgentBench.execChild() }
        let requested = Array(CommandLine.arguments.dropFirst().prefix { !$0.hasPrefix("--") })
        let unknown = requested.filter { name in !all.contains { $0.name == name } }
        guard unknown.isEmpty else {
            FileHandle.standardError.write(Data("unknown benchmark: \(unknown.joined(separator: ", ")); known: \(all.map(\.name).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        #if DEBUG
        print("warning: a debug build; run `make bench` for figures that mean something")
        #endif
        for benchmark in all where requested.isEmpty || requested.contains(benchmark.name) {
            do {
                try await benchmark.run()
            } catch {
                FileHandle.standardError.write(Data("\(benchmark.name): \(error)\n".utf8))
                exit(1)
            }
        }
    }
}

/// Latency samples and their percentiles.
struct Samples {
    private(set) var values: [Double] = []
    mutating func add(_ value: Double) { values.append(value) }
    func percentile(_ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count - 1)).rounded())
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
    var mean: Double { values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count) }
}


func figure(_ name: String, _ value: String, target: String? = nil) {
    let padded = name.padding(toLength: 58, withPad: " ", startingAt: 0)
    print("  \(padded) \(value)\(target.map { "   (target \($0))" } ?? "")")
}
