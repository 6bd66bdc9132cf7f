import Foundation
import KubeAPI

#if canImport(Glibc)
import Glibc
#endif

/// A `tenops operator` process (the binary beside this one, through `TenopsChild`): its
/// /healthz, /readyz and /metrics endpoint and its leader-election identity, read from what it
/// prints at start.
final class OperatorProcess {
    let name: String
    let child: TenopsChild
    private(set) var endpoint: String?
    private(set) var identity: String?

    /// `tenops operator` with `arguments`, its endpoint on a free loopback port.
    static func commandLine(_ arguments: [String]) -> [String] { ["operator", "--metrics-address", "127.0.0.1:0"] + arguments }

    /// Starts `tenops operator` with `arguments` (see `commandLine`).
    convenience init(name: String, arguments: [String], log: String) throws {
        self.init(name: name, child: try TenopsChild(Self.commandLine(arguments), log: log))
    }

    /// A process started with `commandLine`.
    init(name: String, child: TenopsChild) {
        self.name = name
        self.child = child
    }

    var pid: pid_t { child.pid }
    var isRunning: Bool { child.isRunning }

    /// Waits until the process has printed its endpoint and identity.
    func waitUntilServing(timeout: Duration = .seconds(30)) async throws {
        try await NodeBench.waitUntil("\(name) prints its endpoint", timeout: timeout) {
            let text = (try? String(contentsOfFile: self.child.log, encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                if let range = line.range(of: "/metrics on http://") { self.endpoint = String(line[range.upperBound...]) }
                if line.contains("campaigning for the Lease"), let range = line.range(of: " as ", options: .backwards) {
                    self.identity = String(line[range.upperBound...])
                }
            }
            return (self.endpoint != nil && self.identity != nil) || !self.child.isRunning
        }
        guard endpoint != nil, identity != nil else { throw BenchError("\(name) ended before serving:\n\(child.tail())") }
    }

    /// GET `path` on the endpoint: the HTTP status and body, nil when it does not answer.
    func get(_ path: String) async -> (status: Int, body: String)? {
        guard let endpoint else { return nil }
        let request = HTTPRequest(method: "GET", url: "http://\(endpoint)\(path)", timeout: .seconds(2), connectTimeout: .seconds(1))
        guard let response = try? await CurlTransport.shared.perform(request, tls: TLSSettings()) else { return nil }
        return (response.head.status, String(decoding: response.body, as: UTF8.self))
    }

    func metric(_ name: String, labels: [String] = []) async -> Double? {
        guard let metrics = await get("/metrics"), metrics.status == 200 else { return nil }
        return PrometheusText.value(in: metrics.body, name: name, labels: labels)
    }

    func kill9() async {
        kill(pid, SIGKILL)
        while child.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
    }

    func terminate() async { await child.stop() }
}

/// Reading the Prometheus text format.
enum PrometheusText {
    /// One series: its name, its labels, its value.
    struct Series {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    static func series(_ text: String) -> [Series] {
        text.split(separator: "\n").compactMap { line -> Series? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                return nil
            }
            let head = line[..<space]
            guard let open = head.firstIndex(of: "{") else { return Series(name: String(head), labels: [:], value: value) }
            var labels: [String: String] = [:]
            var rest = head[head.index(after: open)...].dropLast()  // without the closing brace
            while let equals = rest.firstIndex(of: "=") {
                let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
                var value = ""
                var index = rest.index(equals, offsetBy: 2)  // past ="
                while index < rest.endIndex, rest[index] != "\"" {
                    if rest[index] == "\\", rest.index(after: index) < rest.endIndex {
                        index = rest.index(after: index)
                        value.append(rest[index] == "n" ? "\n" : rest[index])
                    } else {
                        value.append(rest[index])
                    }
                    index = rest.index(after: index)
                }
                labels[key] = value
                rest = index < rest.endIndex ? rest[rest.index(after: index)...] : rest[rest.endIndex...]
            }
            return Series(name: String(head[..<open]), labels: labels, value: value)
        }
    }

    /// The value of series `name` whose label text contains every entry of `labels`
    /// (`"name=\"sample\""`); nil when there is none.
    static func value(in text: String, name: String, labels: [String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            guard labels.allSatisfy({ line.contains($0) }), let space = line.lastIndex(of: " ") else { continue }
            return Double(line[line.index(after: space)...])
        }
        return nil
    }
}
