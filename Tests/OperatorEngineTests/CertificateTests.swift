import Foundation
import KubeAPI
@testable import OperatorEngine
import PKI
import Testing

@Suite("Pair certificates", .timeLimit(.minutes(5)))
struct CertificateTests {
    let object = sampleObject()
    var names: PairNames { PairNames(object) }

    func text(_ secret: Secret, _ key: String) throws -> String {
        try #require(secret.data[key].flatMap { String(data: $0, encoding: .utf8) }, "\(key) in \(secret.name)")
    }

    /// Writes a pair's files for the command-line tools: ca.pem, agent.pem/.key (from the agent
    /// Secret), client.pem/.key (the operator's) and other-ca.pem (another pair's CA).
    func writePairFiles(to directory: String) throws {
        let certificates = try PairCertificates.create(for: names)
        let other = try PairCertificates.create(for: PairNames(name: "other", namespace: "ns"))
        let tls = try certificates.agentTLSSecret(owner: object)
        let client = try certificates.issueOperatorClient()
        let files: [String: String] = [
            "ca.pem": try certificates.authority.certificate.pem, "other-ca.pem": try other.authority.certificate.pem,
            "agent.pem": try text(tls, "tls.crt"), "agent.key": try text(tls, "tls.key"),
            "client.pem": try client.certificatePEM, "client.key": try client.privateKeyPEM,
        ]
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: "\(directory)/\(name)")) }
    }

    @Test("NAME-ca holds the pair CA; NAME-agent-tls holds its certificate and a serverAuth-only agent certificate for the pair's names")
    func secrets() throws {
        let certificates = try PairCertificates.create(for: names)
        let ca = try certificates.caSecret(owner: object)
        #expect(ca.name == "sample-ca" && ca.type == "Opaque")
        #expect(Set(ca.data.keys) == ["ca.crt", "ca.key"])
        let authority = try CertificateAuthority(certificatePEM: try text(ca, "ca.crt"), privateKeyPEM: try text(ca, "ca.key"))
        #expect(try authority.certificate.pem == certificates.authority.certificate.pem)

        let tls = try certificates.agentTLSSecret(owner: object)
        #expect(tls.name == "sample-agent-tls" && tls.type == "kubernetes.io/tls")
        #expect(Set(tls.data.keys) == ["ca.crt", "tls.crt", "tls.key"], "the pods never get the CA's key")
        #expect(try text(tls, "ca.crt") == text(ca, "ca.crt"))
        let agent = try Certificate(pem: try text(tls, "tls.crt"))
        #expect(agent.extendedKeyUsages == [.serverAuth])
        #expect(!agent.isCertificateAuthority)
        #expect(agent.matches(try PrivateKey(pem: try text(tls, "tls.key"))))
        try authority.verify(agent, for: .serverAuth)
        #expect(throws: PKIError.self) { try authority.verify(agent, for: .clientAuth) }
        #expect(agent.subjectCommonName == "sample-agent")
        #expect(agent.dnsNames == [
            "sample", "sample.ns", "sample.ns.svc", "sample.ns.svc.cluster.local", "*.sample.ns.svc", "*.sample.ns.svc.cluster.local",
            "sample-0.sample.ns.svc", "sample-0.sample.ns.svc.cluster.local", "sample-1.sample.ns.svc", "sample-1.sample.ns.svc.cluster.local",
        ])
        #expect(agent.ipAddresses.isEmpty)
        #expect(certificates.agentTLSProblems(tls).isEmpty, "\(certificates.agentTLSProblems(tls))")
    }

    @Test("the operator's client certificate is clientAuth only, from the pair CA; TLS settings trust only the pair CA and check NAME.NS.svc")
    func operatorClient() throws {
        let certificates = try PairCertificates.create(for: names)
        let client = try certificates.issueOperatorClient()
        #expect(client.certificate.extendedKeyUsages == [.clientAuth])
        #expect(client.certificate.subjectCommonName == "tenops-operator")
        try certificates.authority.verify(client.certificate, for: .clientAuth)
        #expect(throws: PKIError.self) { try certificates.authority.verify(client.certificate, for: .serverAuth) }
        let settings = try certificates.agentTLSSettings(client: client)
        #expect(settings.certificateAuthorityPEM == Data(try certificates.authority.certificate.pem.utf8))
        #expect(settings.clientCertificatePEM == Data(try client.certificatePEM.utf8))
        #expect(settings.serverName == "sample.ns.svc" && !settings.insecureSkipVerify)
    }

    @Test("openssl agrees: agent for sslserver and the pair's names only, operator client for sslclient only, nothing from another pair")
    func opensslVerify() async throws {
        try await withScratchDirectory { directory in
            try writePairFiles(to: directory)
            func verify(_ arguments: [String], _ file: String, ca: String = "ca.pem") async throws -> ProcessOutput {
                try await ChildProcess.run("/usr/bin/openssl", ["verify", "-CAfile", "\(directory)/\(ca)"] + arguments + ["\(directory)/\(file)"])
            }
            let server = try await verify(["-purpose", "sslserver", "-verify_hostname", "sample.ns.svc"], "agent.pem")
            #expect(server.status == 0 && server.out.contains("agent.pem: OK"), "\(server)")
            let pod = try await verify(["-purpose", "sslserver", "-verify_hostname", "sample-1.sample.ns.svc.cluster.local"], "agent.pem")
            #expect(pod.status == 0, "\(pod)")
            let wrongName = try await verify(["-purpose", "sslserver", "-verify_hostname", "other.ns.svc"], "agent.pem")
            #expect(wrongName.status != 0, "\(wrongName)")
            let agentAsClient = try await verify(["-purpose", "sslclient"], "agent.pem")
            #expect(agentAsClient.status != 0, "\(agentAsClient)")
            let client = try await verify(["-purpose", "sslclient"], "client.pem")
            #expect(client.status == 0 && client.out.contains("client.pem: OK"), "\(client)")
            let clientAsServer = try await verify(["-purpose", "sslserver"], "client.pem")
            #expect(clientAsServer.status != 0, "\(clientAsServer)")
            let foreign = try await verify(["-purpose", "sslserver"], "agent.pem", ca: "other-ca.pem")
            #expect(foreign.status != 0, "\(foreign)")
        }
    }

    /// The verification the operator relies on, with real libcurl (the curl CLI) and a real TLS
    /// server holding the agent's Secret: trusting the pair CA alone and checking `NAME.NS.svc`
    /// while connecting to an IP passes; checking the IP, another name or another CA fails.
    @Test("libcurl verifies the agent by the pair CA and NAME.NS.svc while connecting to its IP (CONNECT_TO), with the operator's client certificate")
    func curlConnectTo() async throws {
        try await withScratchDirectory { directory in
            try writePairFiles(to: directory)
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            server.arguments = ["s_server", "-accept", "127.0.0.1:0", "-cert", "\(directory)/agent.pem", "-key", "\(directory)/agent.key",
                                "-CAfile", "\(directory)/ca.pem", "-Verify", "1", "-verify_return_error", "-www"]
            #expect(FileManager.default.createFile(atPath: "\(directory)/server.out", contents: nil))
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(directory)/server.out"))
            defer { try? output.close() }
            server.standardOutput = output
            server.standardError = output
            try server.run()
            defer { kill(server.processIdentifier, SIGKILL) }
            var port: String?
            for _ in 0..<100 where port == nil {
                try await Task.sleep(for: .milliseconds(50))
                let text = (try? String(contentsOfFile: "\(directory)/server.out", encoding: .utf8)) ?? ""
                port = text.range(of: #"ACCEPT 127\.0\.0\.1:[0-9]+"#, options: .regularExpression).map { String(text[$0].split(separator: ":")[1]) }
            }
            let serverPort = try #require(port, "openssl s_server did not start")

            func curl(name: String, ca: String = "ca.pem") async throws -> ProcessOutput {
                var arguments = ["-sS", "--max-time", "10", "--cacert", "\(directory)/\(ca)", "--cert", "\(directory)/client.pem",
                                 "--key", "\(directory)/client.key"]
                if name != "127.0.0.1" { arguments += ["--connect-to", "\(name):\(serverPort):127.0.0.1:\(serverPort)"] }
                return try await ChildProcess.run("/usr/bin/curl", arguments + ["https://\(name):\(serverPort)/"])
            }
            let verified = try await curl(name: names.agentServerName)
            #expect(verified.status == 0 && verified.out.contains("s_server"), "\(verified)")
            let byIP = try await curl(name: "127.0.0.1")
            #expect(byIP.status == 60, "no IP is in the certificate: \(byIP)")
            let otherName = try await curl(name: "other.ns.svc")
            #expect(otherName.status == 60, "\(otherName)")
            let otherCA = try await curl(name: names.agentServerName, ca: "other-ca.pem")
            #expect(otherCA.status == 60, "\(otherCA)")
        }
    }

    @Test("loading the CA Secret reuses the CA; without one a new CA is made")
    func reuse() throws {
        let (first, created) = try PairCertificates.load(caSecret: nil, for: names)
        #expect(created)
        let secret = try first.caSecret(owner: object)
        let (again, createdAgain) = try PairCertificates.load(caSecret: secret, for: names)
        #expect(!createdAgain)
        #expect(try again.authority.certificate.pem == first.authority.certificate.pem)
        #expect(try again.authority.privateKey.pem == first.authority.privateKey.pem)
        #expect(try again.caSecret(owner: object).data == secret.data, "building from the loaded CA gives the same Secret")
        // An agent Secret issued before stays good under the reloaded CA.
        let tls = try first.agentTLSSecret(owner: object)
        #expect(again.agentTLSProblems(tls).isEmpty)
    }

    @Test("a CA Secret with garbage gives a clear error naming the Secret", arguments: [
        ([String: String](), "key ca.crt is missing"),
        (["ca.crt": "garbage", "ca.key": "garbage"], "does not hold a usable CA"),
        (["ca.crt": "x"], "key ca.key is missing"),
    ])
    func garbage(_ data: [String: String], _ message: String) throws {
        var secret = Secret(name: "sample-ca", namespace: "ns")
        secret.data = data.mapValues { Data($0.utf8) }
        let error = #expect(throws: PairCertificateError.self) { try PairCertificates.load(caSecret: secret, for: names) }
        #expect(error?.secret == "sample-ca" && error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.description.hasPrefix("Secret sample-ca: ") == true)
    }

    @Test("a CA Secret whose key belongs to another CA, or whose certificate is not a CA, is refused")
    func mismatched() throws {
        let one = try PairCertificates.create(for: names), two = try PairCertificates.create(for: names)
        var secret = try one.caSecret(owner: object)
        var data = secret.data
        data["ca.key"] = Data(try two.authority.privateKey.pem.utf8)
        secret.data = data
        #expect(throws: PairCertificateError.self) { try PairCertificates.load(caSecret: secret, for: names) }
        let leaf = try one.issueAgent()
        data = ["ca.crt": Data(try leaf.certificatePEM.utf8), "ca.key": Data(try leaf.privateKeyPEM.utf8)]
        secret.data = data
        do {
            _ = try PairCertificates.load(caSecret: secret, for: names)
            Issue.record("a leaf certificate was taken for a CA")
        } catch {
            #expect(error.message.contains("not a CA"), "\(error)")
        }
    }

    @Test("an agent Secret from another CA, for other names, near its end, or with the wrong key must be issued again")
    func agentProblems() throws {
        let certificates = try PairCertificates.create(for: names)
        let other = try PairCertificates.create(for: names)
        #expect(certificates.agentTLSProblems(try other.agentTLSSecret(owner: object)).count == 2, "wrong ca.crt and no chain")

        let renamed = try PairCertificates(names: PairNames(name: "sample", namespace: "elsewhere"), authority: certificates.authority)
        let moved = certificates.agentTLSProblems(try renamed.agentTLSSecret(owner: object))
        #expect(moved.count == 1 && moved[0].contains("lacks the names"), "\(moved)")

        let good = try certificates.agentTLSSecret(owner: object)
        let late = certificates.agentTLSProblems(good, now: Date().addingTimeInterval(CertificateAuthority.defaultLeafValidity - 86_400))
        #expect(late.count == 1 && late[0].contains("expires"), "\(late)")

        var swapped = good
        var data = good.data
        data["tls.key"] = Data(try certificates.issueAgent().privateKeyPEM.utf8)
        swapped.data = data
        #expect(certificates.agentTLSProblems(swapped) == ["tls.key is missing or does not belong to tls.crt"])

        data["tls.crt"] = Data(try certificates.issueOperatorClient().certificatePEM.utf8)
        swapped.data = data
        #expect(certificates.agentTLSProblems(swapped).contains { $0.contains("serverAuth only") })
        #expect(certificates.agentTLSProblems(Secret(name: "x", namespace: "ns")).count == 2)
    }
}
