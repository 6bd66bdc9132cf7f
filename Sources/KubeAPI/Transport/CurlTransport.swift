import CCurl
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// HTTP over libcurl, driven by one dedicated I/O thread through curl_multi.
///
/// No libcurl call runs on Swift's cooperative thread pool: callers enqueue a transfer and
/// suspend on a continuation; the I/O thread adds it to the multi handle, runs it, and resumes
/// the caller. The multi handle keeps a connection cache, so keep-alive connections are reused,
/// and HTTP/2 is negotiated (and multiplexed) when the server offers it.
public final class CurlTransport: HTTPTransport {
    /// The process-wide I/O thread.
    public static let shared = CurlTransport()

    private let loop: CurlMultiLoop
    let handles: EasyHandlePool
    let chunks: ChunkBuffers

    /// `idleHandles`: how many curl handles to keep between transfers (see `EasyHandlePool`);
    /// `idleChunkBuffers`: how many streamed chunks' buffers to keep (see `ChunkBuffers`).
    public init(idleHandles: Int = 16, idleChunkBuffers: Int = 16) {
        loop = CurlMultiLoop()
        handles = EasyHandlePool(capacity: idleHandles)
        chunks = ChunkBuffers(capacity: idleChunkBuffers)
    }

    public func perform(_ request: HTTPRequest, tls: TLSSettings) async throws(KubeAPIError) -> HTTPResponse {
        try await complete(try Transfer.make(request: request, tls: tls, mode: .buffered, handles: handles, chunks: chunks))
    }

    public func forward(_ request: HTTPRequest, tls: TLSSettings,
                        to receive: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws(KubeAPIError) -> HTTPResponse {
        let transfer = try Transfer.make(request: request, tls: tls, mode: .forwarding, handles: handles, chunks: chunks)
        transfer.bodyReceiver = receive
        return try await complete(transfer)
    }

    /// Runs `transfer` to its end; cancelling the calling Task aborts it.
    private func complete(_ transfer: Transfer) async throws(KubeAPIError) -> HTTPResponse {
        let result: Result<HTTPResponse, KubeAPIError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, KubeAPIError>, Never>) in
                transfer.onComplete = { continuation.resume(returning: $0) }
                loop.submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
        return try result.get()
    }

    public func stream(_ request: HTTPRequest, tls: TLSSettings) async throws(KubeAPIError)
        -> (HTTPResponseHead, AsyncThrowingStream<Data, any Error>)
    {
        let transfer = try Transfer.make(request: request, tls: tls, mode: .streaming, handles: handles, chunks: chunks)
        let (body, bodyContinuation) = AsyncThrowingStream<Data, any Error>.makeStream()
        transfer.bodyContinuation = bodyContinuation
        let loop = self.loop
        bodyContinuation.onTermination = { _ in loop.cancel(transfer) }
        let head: Result<HTTPResponseHead, KubeAPIError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponseHead, KubeAPIError>, Never>) in
                transfer.onHead = { continuation.resume(returning: $0) }
                loop.submit(transfer)
            }
        } onCancel: {
            loop.cancel(transfer)
        }
        return (try head.get(), body)
    }
}

/// One transfer. Its mutable state is touched only by the I/O thread, except the callbacks set
/// before submission.
final class Transfer: @unchecked Sendable {
    /// `buffered`: the whole body, at the end. `streaming`: the body as `Data` chunks through
    /// `bodyContinuation`. `forwarding`: a successful (2xx) body handed to `bodyReceiver` as curl
    /// writes it, the first 64 KiB of any other kept, with the end through `onComplete`.
    enum Mode { case buffered, streaming, forwarding }

    let mode: Mode
    let easy: UnsafeMutableRawPointer
    private let handles: EasyHandlePool
    private let chunks: ChunkBuffers
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var connectToList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar> = {
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        buffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        return buffer
    }()
    let description: String
    let maxBodyBytes: Int
    /// Set when the body outgrew `maxBodyBytes`; the write callback then aborts the transfer.
    var bodyTooLarge = false

    // Response state, written by callbacks on the I/O thread.
    var headStatus = 0
    var headVersion = ""
    var headers: [String: String] = [:]
    var headDelivered = false
    var body = Data()
    var finished = false

    // Completion, set before submission.
    var onComplete: (@Sendable (Result<HTTPResponse, KubeAPIError>) -> Void)?
    var onHead: (@Sendable (Result<HTTPResponseHead, KubeAPIError>) -> Void)?
    var bodyContinuation: AsyncThrowingStream<Data, any Error>.Continuation?
    var bodyReceiver: (@Sendable (UnsafeRawBufferPointer) -> Void)?

    init(request: HTTPRequest, tls: TLSSettings, mode: Mode, handles: EasyHandlePool, chunks: ChunkBuffers) throws {
        guard let easy = handles.take() else { throw KubeAPIError.transport("curl_easy_init failed") }
        self.easy = easy
        self.handles = handles
        self.chunks = chunks
        self.mode = mode
        self.description = "\(request.method) \(Transfer.redacted(request.url))"
        self.maxBodyBytes = request.maxBodyBytes
        try configure(request: request, tls: tls)
    }

    /// `init`, with any error as a `KubeAPIError`.
    static func make(request: HTTPRequest, tls: TLSSettings, mode: Mode, handles: EasyHandlePool, chunks: ChunkBuffers)
        throws(KubeAPIError) -> Transfer
    {
        do {
            return try Transfer(request: request, tls: tls, mode: mode, handles: handles, chunks: chunks)
        } catch let error as KubeAPIError {
            throw error
        } catch {
            throw .transport("\(error)")
        }
    }

    /// A URL without any user:password part, for messages.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@"),
              !url[scheme.upperBound..<at].contains("/") else { return url }
        return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...])
    }

    /// The multi handle no longer has `easy` by now: a transfer leaves `active` only as it is removed.
    deinit {
        handles.recycle(easy)
        errorBuffer.deallocate()
        if let headerList { curl_slist_free_all(headerList) }
        if let connectToList { curl_slist_free_all(connectToList) }
    }

    private func check(_ code: CURLcode, _ what: String) throws {
        guard code == CURLE_OK else {
            throw KubeAPIError.transport("\(what): \(String(cString: curl_easy_strerror(code)))")
        }
    }

    private func configure(request: HTTPRequest, tls: TLSSettings) throws {
        if let routing = ServerNameRouting(url: request.url, serverName: tls.serverName) {
            try check(tenops_curl_easy_setopt_string(easy, CURLOPT_URL, routing.url), "URL")
            connectToList = curl_slist_append(nil, routing.connectTo)
            try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_CONNECT_TO, UnsafeMutableRawPointer(connectToList)), "CONNECT_TO")
        } else {
            try check(tenops_curl_easy_setopt_string(easy, CURLOPT_URL, request.url), "URL")
        }
        try check(tenops_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "NOSIGNAL")
        try check(tenops_curl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1), "TCP_NODELAY")
        try check(tenops_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS")
        try check(tenops_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1), "TCP_KEEPALIVE")
        // A pooled connection idle for 30 s is closed rather than kept (curl's default is 118 s):
        // each holds an OpenSSL context of its own, and the agents' calls come in bursts.
        try check(tenops_curl_easy_setopt_long(easy, CURLOPT_MAXAGE_CONN, Self.idleConnectionSeconds), "MAXAGE_CONN")
        try check(tenops_curl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)), "HTTP_VERSION")
        // A curl older than 7.62 has no such option and keeps its default.
        _ = tenops_curl_easy_setopt_long(easy, CURLOPT_UPLOAD_BUFFERSIZE, Self.uploadBufferBytes)
        try check(tenops_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(request.connectTimeout)), "CONNECTTIMEOUT")
        if let timeout = request.timeout {
            try check(tenops_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(timeout)), "TIMEOUT")
        }
        if let idle = request.idleTimeout {
            // Below 1 byte/s for the whole period: curl aborts with CURLE_OPERATION_TIMEDOUT.
            try check(tenops_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1), "LOW_SPEED_LIMIT")
            try check(tenops_curl_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(idle) / 1000)), "LOW_SPEED_TIME")
        }
        try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer), "ERRORBUFFER")
        // Only a curl built on OpenSSL has the hook; elsewhere connections just free their buffers.
        _ = tenops_curl_easy_keep_tls_buffers(easy)

        switch request.method {
        case "GET":
            try check(tenops_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1), "HTTPGET")
        default:
            try check(tenops_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, request.method), "CUSTOMREQUEST")
        }
        if let body = request.body {
            try check(tenops_curl_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)), "POSTFIELDSIZE")
            // COPYPOSTFIELDS copies `POSTFIELDSIZE` bytes, so binary bodies are safe.
            var bytes = [UInt8](body)
            bytes.append(0)
            try bytes.withUnsafeMutableBytes { raw in
                try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, raw.baseAddress), "COPYPOSTFIELDS")
            }
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in request.headers {
            list = curl_slist_append(list, "\(name): \(value)")
        }
        list = curl_slist_append(list, "Expect:")  // no 100-continue round trip
        headerList = list
        try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)), "HTTPHEADER")

        if tls.insecureSkipVerify {
            try check(tenops_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 0), "SSL_VERIFYPEER")
            try check(tenops_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 0), "SSL_VERIFYHOST")
        } else if let ca = tls.certificateAuthorityPEM {
            try ca.withUnsafeBytes { try check(tenops_curl_easy_setopt_blob(easy, CURLOPT_CAINFO_BLOB, $0.baseAddress, $0.count), "CAINFO_BLOB") }
        }
        if let certificate = tls.clientCertificatePEM, let key = tls.clientKeyPEM {
            try check(tenops_curl_easy_setopt_string(easy, CURLOPT_SSLCERTTYPE, "PEM"), "SSLCERTTYPE")
            try certificate.withUnsafeBytes { try check(tenops_curl_easy_setopt_blob(easy, CURLOPT_SSLCERT_BLOB, $0.baseAddress, $0.count), "SSLCERT_BLOB") }
            try check(tenops_curl_easy_setopt_string(easy, CURLOPT_SSLKEYTYPE, "PEM"), "SSLKEYTYPE")
            try key.withUnsafeBytes { try check(tenops_curl_easy_setopt_blob(easy, CURLOPT_SSLKEY_BLOB, $0.baseAddress, $0.count), "SSLKEY_BLOB") }
        }

        let context = Unmanaged.passUnretained(self).toOpaque()
        try check(tenops_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback), "WRITEFUNCTION")
        try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, context), "WRITEDATA")
        try check(tenops_curl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback), "HEADERFUNCTION")
        try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, context), "HEADERDATA")
        try check(tenops_curl_easy_setopt_ptr(easy, CURLOPT_PRIVATE, context), "PRIVATE")
    }

    /// How long a pooled connection may sit idle before curl closes it instead of reusing it.
    static let idleConnectionSeconds = 30
    /// curl sends a request over TLS out of an upload buffer, made when the request is sent and
    /// freed only when the transfer ends: for a watch or a followed log, minutes after it was last
    /// used. Its default is 64 KiB, above the console's mmap threshold, so each first watch's
    /// buffer had pages of its own, one of them touched. A watch made again later, while the
    /// heap had a free chunk of 64 KiB (the log pane's batches make and free one twenty times a
    /// second), got its buffer there instead, and the batches moved up into new pages: the
    /// console's RSS stepped up at each informer's first reconnect (in a diagnostic run, its heap
    /// grew by 172 KiB over the six of them; by 76 KiB with this). 16 KiB, curl's least, is below
    /// the threshold: every such buffer is in the heap from the first, and a new one takes a freed
    /// one's place. Larger bodies are sent in pieces of this size.
    static let uploadBufferBytes = 16 << 10

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    // MARK: I/O-thread side

    func receivedHeaderLine(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            // A new response (after 100 Continue or a redirect) starts over.
            headers = [:]
            let parts = trimmed.split(separator: " ", maxSplits: 2)
            headVersion = parts.first.map(String.init) ?? ""
            headStatus = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return
        }
        if trimmed.isEmpty {
            // End of this header block.
            if headStatus >= 200 { deliverHead() }
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        let name = trimmed[..<colon].lowercased()
        let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        headers[name] = value
    }

    func receivedBody(_ bytes: UnsafeRawBufferPointer) {
        if !headDelivered { deliverHead() }
        switch mode {
        case .buffered: keep(bytes)
        case .streaming: bodyContinuation?.yield(chunks.chunk(bytes))
        case .forwarding:
            if (200..<300).contains(headStatus) {
                bodyReceiver?(bytes)
            } else {
                // An error's Status is in its first bytes; the rest is dropped, not failed on.
                let room = max(0, HTTPResponse.refusedStreamBodyBytes - body.count)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes.prefix(room)))
            }
        }
    }

    /// Adds `bytes` to the buffered body, or marks it too large.
    private func keep(_ bytes: UnsafeRawBufferPointer) {
        guard body.count + bytes.count <= maxBodyBytes else {
            bodyTooLarge = true
            return
        }
        body.append(contentsOf: bytes)
    }

    private func deliverHead() {
        guard !headDelivered else { return }
        headDelivered = true
        if mode == .streaming {
            let head = HTTPResponseHead(status: headStatus, headers: headers, httpVersion: headVersion)
            onHead?(.success(head))
            onHead = nil
        }
    }

    /// Called once, on the I/O thread, when curl is done with the transfer.
    func finish(code: CURLcode) {
        guard !finished else { return }
        finished = true
        if code == CURLE_OK {
            let head = HTTPResponseHead(status: headStatus, headers: headers, httpVersion: headVersion)
            switch mode {
            case .buffered, .forwarding:
                onComplete?(.success(HTTPResponse(head: head, body: body)))
            case .streaming:
                deliverHead()
                bodyContinuation?.finish()
            }
        } else if bodyTooLarge {
            fail(.malformedResponse("\(description): the response body is larger than \(maxBodyBytes) bytes"))
        } else {
            fail(transportError(code))
        }
        onComplete = nil
        onHead = nil
        bodyContinuation = nil
        bodyReceiver = nil
    }

    func fail(_ error: KubeAPIError) {
        finished = true
        switch mode {
        case .buffered, .forwarding:
            onComplete?(.failure(error))
        case .streaming:
            if !headDelivered {
                headDelivered = true
                onHead?(.failure(error))
            }
            bodyContinuation?.finish(throwing: error)
        }
        onComplete = nil
        onHead = nil
        bodyContinuation = nil
        bodyReceiver = nil
    }

    private func transportError(_ code: CURLcode) -> KubeAPIError {
        let detail = String(validatingCString: errorBuffer) ?? ""
        let summary = String(cString: curl_easy_strerror(code))
        return .transport("\(description): \(detail.isEmpty ? summary : detail)")
    }
}

private let curlWriteCallback: tenops_curl_data_callback = { pointer, size, count, context in
    let length = size * count
    guard let pointer, let context else { return length }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    transfer.receivedBody(UnsafeRawBufferPointer(start: pointer, count: length))
    return transfer.bodyTooLarge ? 0 : length  // 0 makes curl abort with CURLE_WRITE_ERROR
}

private let curlHeaderCallback: tenops_curl_data_callback = { pointer, size, count, context in
    let length = size * count
    guard let pointer, let context else { return length }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let line = pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
    transfer.receivedHeaderLine(line)
    return length
}

/// curl easy handles kept from one transfer to the next, reset in between, as curl advises: a
/// request then makes no handle anew (a GET came to 1.02 to 1.15 times the curl CLI's cost,
/// against 1.13 to 1.17). curl still allocates its receive and upload buffers for each transfer
/// and frees them when it ends (a trace of the console's mallocs shows both at every watch made
/// again), so it did not change the console's RSS steps at watch reconnects, which it was first
/// tried for. `curl_easy_reset` returns every option to its default (the URL, the method, the
/// body, the timeouts, the certificates, the callbacks and their context), and keeps what curl
/// keeps per handle, such as the TLS session cache.
/// At most `capacity` idle handles are kept; one more is cleaned up.
final class EasyHandlePool: Sendable {
    private let idle: KeptPointers

    init(capacity: Int) {
        idle = KeptPointers(capacity: capacity)
    }

    /// The handle used last, or a new one; nil when curl cannot make one.
    func take() -> UnsafeMutableRawPointer? {
        if let handle = idle.take() { return handle }
        CurlGlobal.initialize()
        return curl_easy_init()
    }

    /// Takes back a handle that no multi handle has.
    func recycle(_ easy: UnsafeMutableRawPointer) {
        curl_easy_reset(easy)
        if !idle.keep(easy) { curl_easy_cleanup(easy) }
    }

    /// The idle handles' addresses, most recently used last (the tests look at them).
    var idleAddresses: [Int] { idle.addresses }

    deinit {
        for handle in idle.removeAll() { curl_easy_cleanup(handle) }
    }
}

/// Up to `capacity` idle pointers of a pool (curl handles, chunk buffers), most recently kept
/// last; only the pool touches one until `take` hands it out.
final class KeptPointers: Sendable {
    /// A kept pointer: no one else touches what it points to while it is here.
    private struct Kept: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    let capacity: Int
    private let idle = Mutex<[Kept]>([])

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// The pointer kept last, if any.
    func take() -> UnsafeMutableRawPointer? { idle.withLock { $0.popLast() }?.pointer }

    /// Keeps `pointer` unless `capacity` are kept already: then false, and the caller frees it.
    func keep(_ pointer: UnsafeMutableRawPointer) -> Bool {
        idle.withLock { idle in
            guard idle.count < capacity else { return false }
            idle.append(Kept(pointer: pointer))
            return true
        }
    }

    var count: Int { idle.withLock { $0.count } }
    var addresses: [Int] { idle.withLock { $0.map { Int(bitPattern: $0.pointer) } } }

    /// Hands over every pointer kept, for the pool to free.
    func removeAll() -> [UnsafeMutableRawPointer] {
        idle.withLock { idle in
            defer { idle = [] }
            return idle.map(\.pointer)
        }
    }
}

/// The storage of streamed chunks: buffers of `bufferBytes`, each taken back for the next chunk
/// once the chunk's reader lets it go, up to `capacity` kept idle. A followed log brings a full
/// 16 KiB chunk a hundred times a second; made by malloc, each was a block of curl's receive and
/// upload buffers' size, made and freed on two threads, and a buffer that a new transfer placed
/// where such chunks had been moved them up into new pages. Chunks larger than a buffer, and
/// chunks too small to need one, are plain `Data`.
final class ChunkBuffers: Sendable {
    let bufferBytes: Int
    private let idle: KeptPointers

    init(bufferBytes: Int = 16 << 10, capacity: Int = 16) {
        self.bufferBytes = bufferBytes
        idle = KeptPointers(capacity: capacity)
    }

    /// A copy of `bytes`, in a kept buffer when they fill more than half of one.
    func chunk(_ bytes: UnsafeRawBufferPointer) -> Data {
        guard bytes.count > bufferBytes / 2, bytes.count <= bufferBytes, let source = bytes.baseAddress else {
            var data = Data(capacity: StorageSize.powerOfTwo(atLeast: bytes.count, minimum: 1024))
            data.append(contentsOf: bytes)
            return data
        }
        let buffer = idle.take() ?? UnsafeMutableRawPointer.allocate(byteCount: bufferBytes, alignment: 16)
        buffer.copyMemory(from: source, byteCount: bytes.count)
        return Data(bytesNoCopy: buffer, count: bytes.count, deallocator: .custom { [self] pointer, _ in recycle(pointer) })
    }

    private func recycle(_ pointer: UnsafeMutableRawPointer) {
        if !idle.keep(pointer) { pointer.deallocate() }
    }

    /// How many buffers wait for a chunk (the tests look at it).
    var idleCount: Int { idle.count }

    deinit {
        for buffer in idle.removeAll() { buffer.deallocate() }
    }
}

/// libcurl's one global initialization, before any handle: the first call decides whether curl
/// allocates through `CurlMemory` or malloc.
enum CurlGlobal {
    /// nil until initialized; then whether curl's large blocks are kept.
    private static let mode = Mutex<Bool?>(nil)

    /// Initializes curl unless it is already; true when this call did, as asked.
    @discardableResult
    static func initialize(keepingLargeBlocks: Bool = false) -> Bool {
        mode.withLock { mode in
            guard mode == nil else { return false }
            let code = keepingLargeBlocks ? CurlMemory.initializeCurl() : curl_global_init(Int(CURL_GLOBAL_DEFAULT))
            mode = keepingLargeBlocks && code == CURLE_OK
            return code == CURLE_OK
        }
    }

    static var keepsLargeBlocks: Bool { mode.withLock { $0 ?? false } }
}

/// The I/O thread and its multi handle.
///
/// On Linux the thread drives libcurl's event interface: curl names the sockets to watch (the
/// socket callback) and when to call back (the timer callback), epoll reports the sockets that
/// are ready, and only their transfers run. `curl_multi_perform`, used elsewhere, runs every
/// transfer at each wakeup and polls each idle one's socket: with thousands of open streams (an
/// operator watching every pod's agent, each stream with its idle timer) that alone takes a core.
final class CurlMultiLoop: @unchecked Sendable {
    private struct Pending {
        var toAdd: [Transfer] = []
        var toCancel: [Transfer] = []
    }

    private let multi: UnsafeMutableRawPointer
    private let pending = Mutex(Pending())
    /// Transfers owned by the multi handle, by easy-handle address. I/O thread only.
    private var active: [UnsafeMutableRawPointer: Transfer] = [:]
    /// Transfers cancelled before their submission reached the I/O thread. I/O thread only.
    private var cancelledEarly: [ObjectIdentifier: Transfer] = [:]
    #if os(Linux)
    /// The epoll instance and the eventfd that wakes it; nil when either could not be made
    /// (the loop then polls through curl).
    private let events: (epoll: Int32, wake: Int32)?
    /// Sockets registered with epoll. I/O thread only.
    private var watched: Set<Int32> = []
    /// When curl wants `CURL_SOCKET_TIMEOUT`; nil: no timer. I/O thread only.
    private var timerDeadline: ContinuousClock.Instant?
    #endif

    init() {
        CurlGlobal.initialize()
        multi = curl_multi_init()
        _ = tenops_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        _ = tenops_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, 64)
        #if os(Linux)
        let epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        let wake = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        var registration = epoll_event()
        registration.events = EPOLLIN.rawValue
        registration.data.fd = wake
        if epoll >= 0, wake >= 0, epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &registration) == 0 {
            events = (epoll, wake)
        } else {
            if epoll >= 0 { close(epoll) }
            if wake >= 0 { close(wake) }
            events = nil
        }
        #endif
        let thread = Thread { [self] in run() }
        thread.name = "tenops-curl-io"
        thread.start()
    }

    func submit(_ transfer: Transfer) {
        pending.withLock { $0.toAdd.append(transfer) }
        wake()
    }

    func cancel(_ transfer: Transfer) {
        pending.withLock { $0.toCancel.append(transfer) }
        wake()
    }

    private func wake() {
        #if os(Linux)
        if let events {
            var one: UInt64 = 1
            _ = write(events.wake, &one, MemoryLayout<UInt64>.size)
            return
        }
        #endif
        curl_multi_wakeup(multi)
    }

    private func run() {
        #if os(Linux)
        if let events {
            let context = Unmanaged.passUnretained(self).toOpaque()
            _ = tenops_curl_multi_setopt_socket_callback(multi, curlSocketCallback)
            _ = tenops_curl_multi_setopt_ptr(multi, CURLMOPT_SOCKETDATA, context)
            _ = tenops_curl_multi_setopt_timer_callback(multi, curlTimerCallback)
            _ = tenops_curl_multi_setopt_ptr(multi, CURLMOPT_TIMERDATA, context)
            runEvents(epoll: events.epoll, wake: events.wake)
        }
        #endif
        var running: Int32 = 0
        while true {
            takePending()
            curl_multi_perform(multi, &running)
            readCompletions()
            var ready: Int32 = 0
            curl_multi_poll(multi, nil, 0, 1000, &ready)
        }
    }

    /// Hands new transfers to curl and takes cancelled ones from it.
    private func takePending() {
        let work = pending.withLock { state -> Pending in
            let taken = state
            state = Pending()
            return taken
        }
        for transfer in work.toAdd where !transfer.finished {
            // Cancelled before it was handed over: fail it now that its callbacks are set.
            if cancelledEarly.removeValue(forKey: ObjectIdentifier(transfer)) != nil {
                transfer.fail(.cancelled)
                continue
            }
            let code = curl_multi_add_handle(multi, transfer.easy)
            if code == CURLM_OK {
                active[transfer.easy] = transfer
            } else {
                transfer.fail(.transport("curl_multi_add_handle: \(String(cString: curl_multi_strerror(code)))"))
            }
        }
        for transfer in work.toCancel where !transfer.finished {
            if active.removeValue(forKey: transfer.easy) != nil {
                curl_multi_remove_handle(multi, transfer.easy)
                transfer.fail(.cancelled)
            } else {
                // Its submission has not arrived yet (a Task cancelled before it started):
                // the transfer's callbacks may not be set, so it is failed on arrival.
                cancelledEarly[ObjectIdentifier(transfer)] = transfer
            }
        }
    }

    /// Finishes the transfers curl is done with.
    private func readCompletions() {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(multi, &remaining) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
            let code = message.pointee.data.result
            if let transfer = active.removeValue(forKey: easy) {
                curl_multi_remove_handle(multi, easy)
                transfer.finish(code: code)
            }
        }
    }

    #if os(Linux)
    private func runEvents(epoll: Int32, wake: Int32) -> Never {
        var running: Int32 = 0
        var ready = [epoll_event](repeating: epoll_event(), count: 256)
        while true {
            takePending()
            // Adding a transfer sets a timer of 0: it starts at the timeout below, at once.
            var timeout: Int32 = 1000
            if let deadline = timerDeadline {
                let left = ContinuousClock.now.duration(to: deadline)
                timeout = left <= .zero ? 0 : Int32(min(1000, (left.inSeconds * 1000).rounded(.up)))
            }
            let count = epoll_wait(epoll, &ready, Int32(ready.count), timeout)
            for index in 0..<max(0, Int(count)) {
                let event = ready[index]
                let socket = event.data.fd
                if socket == wake {
                    var value: UInt64 = 0
                    _ = read(wake, &value, MemoryLayout<UInt64>.size)
                    continue
                }
                var flags: Int32 = 0
                if event.events & EPOLLIN.rawValue != 0 { flags |= CURL_CSELECT_IN }
                if event.events & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
                if event.events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_ERR }
                curl_multi_socket_action(multi, socket, flags, &running)
            }
            if let deadline = timerDeadline, ContinuousClock.now >= deadline {
                timerDeadline = nil  // curl sets the next one from within the call
                curl_multi_socket_action(multi, tenops_curl_socket_timeout(), 0, &running)
            }
            readCompletions()
        }
    }

    /// curl's socket callback: what to watch on `socket` (CURL_POLL_IN, OUT, INOUT), or to stop
    /// watching it (CURL_POLL_REMOVE, before curl closes it).
    fileprivate func watch(_ socket: Int32, what: Int32) {
        guard let epoll = events?.epoll else { return }
        guard what == CURL_POLL_IN || what == CURL_POLL_OUT || what == CURL_POLL_INOUT else {
            if watched.remove(socket) != nil { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, socket, nil) }
            return
        }
        var event = epoll_event()
        event.events = (what & CURL_POLL_IN != 0 ? EPOLLIN.rawValue : 0) | (what & CURL_POLL_OUT != 0 ? EPOLLOUT.rawValue : 0)
        event.data.fd = socket
        // A closed socket leaves epoll by itself, and its number may come back for another.
        if watched.insert(socket).inserted {
            if epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event) != 0, errno == EEXIST { _ = epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event) }
        } else if epoll_ctl(epoll, EPOLL_CTL_MOD, socket, &event) != 0, errno == ENOENT {
            _ = epoll_ctl(epoll, EPOLL_CTL_ADD, socket, &event)
        }
    }

    /// curl's timer callback: call back after `milliseconds` (0: at once), or never (-1).
    fileprivate func setTimer(_ milliseconds: Int) {
        timerDeadline = milliseconds < 0 ? nil : .now + .milliseconds(milliseconds)
    }
    #endif
}

#if os(Linux)
private let curlSocketCallback: curl_socket_callback = { _, socket, what, context, _ in
    guard let context else { return 0 }
    Unmanaged<CurlMultiLoop>.fromOpaque(context).takeUnretainedValue().watch(socket, what: what)
    return 0
}

private let curlTimerCallback: curl_multi_timer_callback = { _, milliseconds, context in
    guard let context else { return 0 }
    Unmanaged<CurlMultiLoop>.fromOpaque(context).takeUnretainedValue().setTimer(milliseconds)
    return 0
}
#endif
