import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// TEST DOUBLE: a plain-HTTP server on 127.0.0.1 that stands in for an agent gone wrong. Each
/// path answers with exactly the bytes a test scripts (cut-off bodies, garbage, a stream that
/// breaks off) or not at all. Blocking sockets, each on a thread of its own, so that nothing
/// waits on Swift's cooperative pool.
final class HostileAgent: Sendable {
    enum Reply: Sendable {
        /// Written piece by piece (20 ms apart), then the connection is closed.
        case pieces([String])
        /// Never answers; the connection stays open until the double stops.
        case hang
        /// Written piece by piece, then silence with the connection left open: a peer that
        /// vanished without closing (a powered-off node).
        case piecesThenSilence([String])
    }

    private struct State {
        /// Replies by request target (path and query); the last one repeats.
        var routes: [String: [Reply]] = [:]
        var connections: Set<Int32> = []
        var stopped = false
        /// Requests read, by target.
        var requests: [String: Int] = [:]
    }

    let port: Int
    private let listener: Int32
    private let state = Mutex(State())

    var baseURL: String { "http://127.0.0.1:\(port)" }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && listen(fd, 32) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else {
            close(fd)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Sets the replies for `target` (e.g. `/v1/status`), used in order; the last repeats.
    func script(_ target: String, _ replies: Reply...) {
        state.withLock { $0.routes[target] = replies }
    }

    /// How many requests for `target` arrived.
    func requests(_ target: String) -> Int { state.withLock { $0.requests[target] ?? 0 } }

    func stop() {
        let connections = state.withLock { state -> Set<Int32> in
            state.stopped = true
            return state.connections
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in connections { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    // MARK: Replies

    /// A whole response with a Content-Length (by default the body's own).
    static func http(_ status: Int, _ body: String, contentLength: Int? = nil, contentType: String = "application/json") -> Reply {
        .pieces(["HTTP/1.1 \(status) Scripted\r\nContent-Type: \(contentType)\r\nContent-Length: \(contentLength ?? body.utf8.count)\r\nConnection: close\r\n\r\n" + body])
    }

    /// A stream whose body ends when the connection closes (a clean end).
    static func stream(_ pieces: [String]) -> Reply {
        .pieces(["HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"] + pieces)
    }

    /// A chunked stream cut off without its terminating chunk (a broken end).
    static func brokenChunkedStream(_ pieces: [String]) -> Reply {
        .pieces(["HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"]
            + pieces.map { String($0.utf8.count, radix: 16) + "\r\n" + $0 + "\r\n" })
    }

    // MARK: Serving

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            let accepted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.connections.insert(fd)
                return true
            }
            guard accepted else {
                close(fd)
                return
            }
            Thread.detachNewThread { [self] in serve(fd) }
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            state.withLock { _ = $0.connections.remove(fd) }
            close(fd)
        }
        guard let target = readRequest(fd) else { return }
        let reply = state.withLock { state -> Reply? in
            state.requests[target, default: 0] += 1
            guard var replies = state.routes[target], let first = replies.first else { return nil }
            if replies.count > 1 {
                replies.removeFirst()
                state.routes[target] = replies
            }
            return first
        } ?? Self.http(404, #"{"error": {"code": "notFound", "message": "not scripted"}}"#)
        switch reply {
        case .hang:
            while !state.withLock({ $0.stopped }) { usleep(10_000) }
        case .pieces(let pieces):
            write(pieces, to: fd)
        case .piecesThenSilence(let pieces):
            guard write(pieces, to: fd) else { return }
            while !state.withLock({ $0.stopped }) { usleep(10_000) }
        }
    }

    /// Sends each piece, 20 ms apart; false when the peer went away.
    @discardableResult
    private func write(_ pieces: [String], to fd: Int32) -> Bool {
        for (index, piece) in pieces.enumerated() {
            if index > 0 { usleep(20_000) }
            let bytes = Array(piece.utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return false }
                sent += n
            }
        }
        return true
    }

    /// Reads the head and the body (so that closing does not reset the connection); returns the
    /// request target.
    private func readRequest(_ fd: Int32) -> String? {
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        var headEnd: Int?
        while headEnd == nil {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return nil }
            data += buffer[..<n]
            headEnd = data.indices.dropLast(3).first { data[$0] == 13 && data[$0 + 1] == 10 && data[$0 + 2] == 13 && data[$0 + 3] == 10 }
            if data.count > 1 << 16 { return nil }
        }
        let head = String(decoding: data[..<headEnd!], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
        var body = data.count - (headEnd! + 4)
        while body < length {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { return nil }
            body += n
        }
        let requestLine = lines.first?.split(separator: " ") ?? []
        return requestLine.count >= 2 ? String(requestLine[1]) : nil
    }
}
