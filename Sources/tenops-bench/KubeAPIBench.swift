import Foundation
import KubeAPI
import KubeTestDouble
import PKI

/// Issue #2's figures: watch decoding rate for Pod-sized objects on one core, and the cost of a
/// GET over loopback against the curl command line doing the same GET in the same run.
enum KubeAPIBench {
    static func run() async throws {
        print("kubeapi")
        try watchDecoding()
        try await getVersusCurl()
    }

    /// Decodes a watch stream of Pod events arriving in 16 KiB chunks, and reads typed fields of
    /// each Pod as an informer's handler would. Single-threaded: one core.
    static func watchDecoding() throws {
        let events = 20_000
        var stream = Data()
        for index in 0..<events { stream.append(contentsOf: PodFixture.watchLine(index: index % 500, resourceVersion: 1000 + index).utf8) }
        let eventSize = stream.count / events
        let chunks = stride(from: 0, to: stream.count, by: 16_384).map { stream[$0..<min($0 + 16_384, stream.count)] }

        var best = 0.0
        for _ in 0..<5 {
            var decoder = WatchStreamDecoder()
            var decoded = 0
            var running = 0
            let clock = ContinuousClock()
            let elapsed = try clock.measure {
                for chunk in chunks {
                    try decoder.decode(Data(chunk)) { event in
                        let pod = Pod(json: event.object.json)
                        if pod.status.phase == "Running", pod.spec.nodeName != nil { running += 1 }
                        decoded += 1
                    }
                }
            }
            precondition(decoded == events && running == events, "decoded \(decoded) of \(events)")
            best = max(best, Double(events) / elapsed.inSeconds)
        }
        figure("watch decode, Pod events of \(eventSize) bytes, 1 core", "\(Int(best)) events/s", target: ">= 20000/s")
    }

    /// Sequential GETs of one Pod over HTTPS with a client certificate, our client against curl.
    static func getVersusCurl() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let ca = try CertificateAuthority.create(commonName: "bench-ca")
        let server = try ca.issueServer(commonName: "bench-apiserver", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
        let user = try ca.issueClient(commonName: "bench-admin", organizations: ["system:masters"])
        try PEMFile.write(try ca.certificate.pem, to: "\(directory)/ca.crt")
        try PEMFile.write(user, certificatePath: "\(directory)/client.crt", keyPath: "\(directory)/client.key")

        let double = try await KubeTestDouble.start(KubeTestDoubleOptions(
            serverCertificatePEM: try server.certificatePEM, serverKeyPEM: try server.privateKeyPEM, clientCAPEM: try ca.certificate.pem))
        defer { Task { await double.stop() } }

        let config = ClusterConfig(
            server: double.baseURL, tls: TLSSettings(certificateAuthorityPEM: Data(try ca.certificate.pem.utf8)),
            credentials: .init(clientCertificatePEM: Data(try user.certificatePEM.utf8), clientKeyPEM: Data(try user.privateKeyPEM.utf8)))
        let client = KubeClient(config: config)
        let pod = Pod(json: try JSONParser.parseObject(Data(PodFixture.json(index: 1, resourceVersion: 1).utf8)))
        var fresh = pod
        fresh.metadata.resourceVersion = nil
        fresh.metadata.uid = nil
        _ = try await client.create(fresh)
        let path = ResourceType.pods.objectPath(namespace: "default", name: pod.name)
        let url = double.baseURL + path

        let count = 1000
        for _ in 0..<50 { _ = try await client.get(Pod.self, name: pod.name, namespace: "default") }  // warm the connection
        var ours = Samples()
        let clock = ContinuousClock()
        let oursTotal = try await clock.measure {
            for _ in 0..<count {
                let start = clock.now
                let fetched = try await client.get(Pod.self, name: pod.name, namespace: "default")
                precondition(fetched.name == pod.name)
                ours.add(start.duration(to: clock.now).inSeconds)
            }
        }

        // curl fetching the same URL `count` times in one process, reusing its connection.
        let curlArguments = ["-s", "-S", "--fail", "--cacert", "\(directory)/ca.crt", "--cert", "\(directory)/client.crt",
                             "--key", "\(directory)/client.key", "-H", "Accept: application/json"]
        _ = try runCurl(curlArguments + Array(repeating: url, count: 50))  // warm-up
        let curlStart = clock.now
        let body = try runCurl(curlArguments + Array(repeating: url, count: count))
        let curlTotal = curlStart.duration(to: clock.now)
        precondition(body.count > count * 1000, "curl fetched \(body.count) bytes")

        // And one curl process per GET, as a script calling curl would.
        let processes = 50
        let perProcessStart = clock.now
        for _ in 0..<processes { _ = try runCurl(curlArguments + [url]) }
        let perProcess = perProcessStart.duration(to: clock.now).inSeconds / Double(processes)

        let oursPerGet = oursTotal.inSeconds / Double(count)
        let curlPerGet = curlTotal.inSeconds / Double(count)
        func ms(_ value: Double) -> String { String(format: "%.3f ms", value * 1000) }
        figure("GET Pod over HTTPS+mTLS, tenops KubeClient, mean", ms(oursPerGet))
        figure("GET Pod, tenops KubeClient, p50 / p99", "\(ms(ours.percentile(50))) / \(ms(ours.percentile(99)))")
        figure("GET Pod, curl CLI, \(count) URLs in one process, mean", ms(curlPerGet))
        figure("GET Pod, curl CLI, one process per GET, mean", ms(perProcess))
        figure("ratio tenops / curl (same connection reuse)", String(format: "%.2f", oursPerGet / curlPerGet), target: "<= 1.5")
        figure("ratio tenops / curl (one process per GET)", String(format: "%.2f", oursPerGet / perProcess))
    }

    static func runCurl(_ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("curl exited with \(process.terminationStatus)") }
        return data
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
