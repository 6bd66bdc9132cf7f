import Foundation
import KubeAPI

#if canImport(Glibc)
import Glibc
#endif

/// A container probe as the pod spec gives it, with Kubernetes' defaults.
struct ProbeSpec: Sendable, Equatable {
    enum Action: Sendable, Equatable {
        case exec(command: [String])
        case httpGet(scheme: String, host: String?, port: PortReference, path: String, headers: [HTTPHeader])
        case tcpSocket(host: String?, port: PortReference)
    }

    struct HTTPHeader: Sendable, Equatable {
        var name: String
        var value: String
    }

    var action: Action
    var initialDelay: Duration = .zero
    var period: Duration = .seconds(10)
    var timeout: Duration = .seconds(1)
    var successThreshold = 1
    var failureThreshold = 3

    /// The probe in `json`; nil when it has no action this node runs (gRPC).
    init?(json: JSONObject) {
        if let command = json["exec"]?["command"].arrayValue {
            action = .exec(command: command.compactMap(\.stringValue))
        } else if let http = json["httpGet"]?.objectValue, let port = PortReference(http["port"]) {
            let headers = (http["httpHeaders"]?.arrayValue ?? []).compactMap { header -> HTTPHeader? in
                guard let name = header["name"].stringValue, let value = header["value"].stringValue else { return nil }
                return HTTPHeader(name: name, value: value)
            }
            action = .httpGet(scheme: http["scheme"]?.stringValue?.lowercased() == "https" ? "https" : "http",
                              host: http["host"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }, port: port,
                              path: http["path"]?.stringValue ?? "/", headers: headers)
        } else if let tcp = json["tcpSocket"]?.objectValue, let port = PortReference(tcp["port"]) {
            action = .tcpSocket(host: tcp["host"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }, port: port)
        } else {
            return nil
        }
        func seconds(_ key: String, minimum: Int64) -> Duration? {
            json[key]?.intValue.map { .seconds(min(max($0, minimum), 86_400)) }
        }
        initialDelay = seconds("initialDelaySeconds", minimum: 0) ?? initialDelay
        period = seconds("periodSeconds", minimum: 1) ?? period
        timeout = seconds("timeoutSeconds", minimum: 1) ?? timeout
        successThreshold = json["successThreshold"]?.intValue.map { Int(min(max($0, 1), 1000)) } ?? successThreshold
        failureThreshold = json["failureThreshold"]?.intValue.map { Int(min(max($0, 1), 1000)) } ?? failureThreshold
    }

    init(action: Action) { self.action = action }
}

/// A probe's port: a number, or the name of one of the container's ports.
enum PortReference: Sendable, Equatable {
    case number(Int)
    case name(String)

    init?(_ value: JSONValue?) {
        if let number = value?.intValue {
            self = .number(Int(number))
        } else if let text = value?.stringValue, !text.isEmpty {
            self = Int(text).map(PortReference.number) ?? .name(text)
        } else {
            return nil
        }
    }

    func resolve(in container: Container) -> Int? {
        switch self {
        case .number(let port):
            return (1...65535).contains(port) ? port : nil
        case .name(let name):
            let ports = container.json["ports"]?.arrayValue ?? []
            return ports.first { $0["name"].stringValue == name }?["containerPort"].intValue.map(Int.init)
        }
    }
}

/// Runs one probe for real against a container.
struct ProbeRunner: Sendable {
    let container: Container
    let podIP: String
    let environment: ProcessEnvironment
    let workingDirectory: String

    /// True when the probe passed within its timeout.
    func run(_ probe: ProbeSpec) async -> Bool {
        switch probe.action {
        case .exec(let command):
            return await exec(command, timeout: probe.timeout)
        case .httpGet(let scheme, let host, let port, let path, let headers):
            guard let port = port.resolve(in: container) else { return false }
            return await httpGet(scheme: scheme, host: host ?? podIP, port: port, path: path, headers: headers, timeout: probe.timeout)
        case .tcpSocket(let host, let port):
            guard let port = port.resolve(in: container) else { return false }
            return await TCPConnectProbe.connect(host: host ?? podIP, port: port, timeout: probe.timeout)
        }
    }

    /// The command with the container's environment, in a process group of its own; killed
    /// when it outlives the timeout.
    private func exec(_ command: [String], timeout: Duration) async -> Bool {
        guard let program = command.first,
              let executable = ContainerCommand.resolve(program, searchPath: environment["PATH"] ?? "", workingDirectory: workingDirectory)
        else { return false }
        let request = SpawnRequest(executable: executable, arguments: command, environment: environment.pairs,
                                   workingDirectory: workingDirectory, outputPath: nil)
        let (exits, continuation) = AsyncStream<ExitStatus>.makeStream()
        let leader: GroupLeader
        do {
            leader = try ProcessSpawner.spawn(request) { status in
                continuation.yield(status)
                continuation.finish()
            }
        } catch {
            return false
        }
        let killer = Task {
            try await Task.sleep(for: timeout)
            leader.signalGroup(SIGKILL)
        }
        defer { killer.cancel() }
        return await withTaskCancellationHandler {
            for await status in exits { return status.succeeded }
            return false
        } onCancel: {
            leader.signalGroup(SIGKILL)
        }
    }

    /// Kubernetes counts 200-399 as success and does not verify HTTPS certificates.
    private func httpGet(scheme: String, host: String, port: Int, path: String, headers: [ProbeSpec.HTTPHeader], timeout: Duration) async -> Bool {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let url = "\(scheme)://\(hostPart):\(port)\(path.hasPrefix("/") ? path : "/" + path)"
        let request = HTTPRequest(method: "GET", url: url, headers: [("User-Agent", "kube-probe/tenops")] + headers.map { ($0.name, $0.value) },
                                  timeout: timeout, connectTimeout: timeout)
        guard let response = try? await CurlTransport.shared.perform(request, tls: TLSSettings(insecureSkipVerify: true)) else { return false }
        return (200..<400).contains(response.head.status)
    }
}

/// A TCP connect with a timeout, without blocking a thread: a non-blocking socket polled
/// between short sleeps.
enum TCPConnectProbe {
    static func connect(host: String, port: Int, timeout: Duration) async -> Bool {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else { return false }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let started = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if started == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, !Task.isCancelled {
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&poller, 1, 0) > 0 {
                var failure: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
                return failure == 0
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
