import Foundation
import Hummingbird
import Logging
import Prometheus

/// The operator's plain-HTTP endpoint (Hummingbird): `/healthz` (200 while the process runs),
/// `/readyz` (200 when `OperatorHealth` says so, else 503 with the reason) and `/metrics` (the
/// Prometheus text format).
struct HealthEndpoint: Sendable {
    let host: String
    let port: Int
    private let task: Task<Void, Never>

    struct AddressError: Error, CustomStringConvertible {
        let description: String
    }

    /// `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (every address).
    static func parseAddress(_ address: String) throws -> (host: String, port: Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port)
        else { throw AddressError(description: "expected HOST:PORT, got \"\(address)\"") }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// Listens on `address`; returns once the port is bound (the bound port when `address` says 0).
    static func start(address: String, health: OperatorHealth, registry: PrometheusCollectorRegistry) async throws -> HealthEndpoint {
        let (host, port) = try parseAddress(address)
        let router = Router()
        router.get("healthz") { _, _ in text(.ok, "ok\n") }
        router.get("readyz") { _, _ in
            if let reason = health.notReadyReason { return text(.serviceUnavailable, "not ready: \(reason)\n") }
            return text(.ok, "ok\n")
        }
        router.get("metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        var quiet = Logger(label: "tenops.http")
        quiet.logLevel = .critical  // no line per probe, nor for the cancellation that stops the server
        let (bound, continuation) = AsyncStream<Result<Int, any Error>>.makeStream(bufferingPolicy: .bufferingOldest(1))
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in continuation.yield(.success(channel.localAddress?.port ?? port)) },
            logger: quiet)
        let task = Task {
            do {
                try await app.run()
            } catch {
                continuation.yield(.failure(error))
            }
            continuation.finish()
        }
        var iterator = bound.makeAsyncIterator()
        switch await iterator.next() {
        case .success(let boundPort)?:
            return HealthEndpoint(host: host, port: boundPort, task: task)
        case .failure(let error)?:
            task.cancel()
            throw AddressError(description: "--metrics-address \(address): cannot listen: \(error)")
        case nil:
            task.cancel()
            throw AddressError(description: "--metrics-address \(address): the endpoint did not start")
        }
    }

    func stop() async {
        task.cancel()
    }

    private static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
