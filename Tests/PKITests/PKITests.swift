import Foundation
import KubeTestDouble
import PKI
import Testing

@Suite("PKI: certificates over libssl", .timeLimit(.minutes(5)))
struct PKITests {
    // MARK: Fields

    @Test("a new CA is a self-signed CA certificate that matches its key")
    func certificateAuthority() throws {
        let before = Date()
        let ca = try CertificateAuthority.create(commonName: "TenOps Test CA", validity: 30 * 86_400)
        let certificate = ca.certificate
        #expect(certificate.isCertificateAuthority)
        #expect(certificate.subjectCommonName == "TenOps Test CA")
        #expect(certificate.issuerCommonName == "TenOps Test CA")
        #expect(certificate.isSigned(by: certificate))
        #expect(certificate.matches(ca.privateKey))
        #expect(!certificate.matches(try PrivateKey.generate()))
        #expect(certificate.extendedKeyUsages.isEmpty)
        #expect(certificate.dnsNames.isEmpty && certificate.ipAddresses.isEmpty)
        // Backdated a little against clock skew, valid for the requested time.
        #expect(certificate.notBefore <= before)
        #expect(certificate.notBefore > before.addingTimeInterval(-3600))
        #expect(abs(certificate.notAfter.timeIntervalSince(before) - 30 * 86_400) < 120)
    }

    @Test("a server certificate carries its DNS and IP SANs and serverAuth only")
    func serverCertificate() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let issued = try ca.issueServer(
            commonName: "sample-0", dnsNames: ["sample-0.sample.ns.svc.cluster.local", "localhost", "*.sample.ns.svc"],
            ipAddresses: ["127.0.0.1", "10.1.2.3", "::1"], validity: 86_400)
        let certificate = issued.certificate
        #expect(certificate.subjectCommonName == "sample-0")
        #expect(certificate.dnsNames == ["sample-0.sample.ns.svc.cluster.local", "localhost", "*.sample.ns.svc"])
        #expect(certificate.ipAddresses == ["127.0.0.1", "10.1.2.3", "0:0:0:0:0:0:0:1"])
        #expect(certificate.extendedKeyUsages == [.serverAuth])
        #expect(!certificate.isCertificateAuthority)
        #expect(certificate.issuerCommonName == "pair-ca")
        #expect(certificate.isSigned(by: ca.certificate))
        #expect(!ca.certificate.isSigned(by: certificate))
        #expect(certificate.matches(issued.privateKey))
        #expect(!certificate.matches(ca.privateKey))
        #expect(certificate.notBefore <= Date() && Date() < certificate.notAfter)
        #expect(abs(certificate.notAfter.timeIntervalSinceNow - 86_400) < 120)
        #expect(certificate.notAfter <= ca.certificate.notAfter)
        try ca.verify(certificate, for: .serverAuth)
        #expect(throws: PKIError.self) { try ca.verify(certificate, for: .clientAuth) }
    }

    @Test("a client certificate carries CN and O and clientAuth only")
    func clientCertificate() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let issued = try ca.issueClient(commonName: "tenops-operator", organizations: ["system:masters", "tenops"])
        let certificate = issued.certificate
        #expect(certificate.subjectCommonName == "tenops-operator")
        #expect(certificate.subjectOrganizations == ["system:masters", "tenops"])
        #expect(certificate.extendedKeyUsages == [.clientAuth])
        #expect(certificate.dnsNames.isEmpty && certificate.ipAddresses.isEmpty)
        #expect(!certificate.isCertificateAuthority)
        #expect(certificate.issuerCommonName == "pair-ca")
        #expect(certificate.matches(issued.privateKey))
        try ca.verify(certificate, for: .clientAuth)
        #expect(throws: PKIError.self) { try ca.verify(certificate, for: .serverAuth) }
    }

    @Test("a request with both usages gives both EKUs")
    func bothUsages() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let issued = try ca.issue(CertificateRequest(commonName: "agent", dnsNames: ["agent"], usages: [.serverAuth, .clientAuth]))
        #expect(issued.certificate.extendedKeyUsages == [.serverAuth, .clientAuth])
        try ca.verify(issued.certificate, for: .serverAuth)
        try ca.verify(issued.certificate, for: .clientAuth)
    }

    @Test("every issued certificate gets a fresh key")
    func freshKeys() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let first = try ca.issueClient(commonName: "a")
        let second = try ca.issueClient(commonName: "a")
        #expect(try first.privateKey.publicKeyPEM != second.privateKey.publicKeyPEM)
        #expect(try first.certificatePEM != second.certificatePEM)
        #expect(!first.certificate.matches(second.privateKey))
    }

    // MARK: Chains, checked by OpenSSL's own CLI

    @Test("openssl verify accepts the chains for their purposes and rejects the rest")
    func opensslVerify() async throws {
        try await withTemporaryDirectory { dir in
            let ca = try CertificateAuthority.create(commonName: "pair-ca")
            let server = try ca.issueServer(commonName: "server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
            let client = try ca.issueClient(commonName: "client", organizations: ["group"])
            try PEMFile.write(ca.certificate.pem, to: dir.file("ca.pem"))
            try PEMFile.write(server, certificatePath: dir.file("server.pem"), keyPath: dir.file("server.key"))
            try PEMFile.write(client, certificatePath: dir.file("client.pem"), keyPath: dir.file("client.key"))

            func verify(_ purpose: String, _ file: String) async throws -> ProcessResult {
                try await openssl(["verify", "-CAfile", dir.file("ca.pem"), "-purpose", purpose, dir.file(file)], in: dir)
            }
            let serverOK = try await verify("sslserver", "server.pem")
            #expect(serverOK.succeeded, "\(serverOK)")
            #expect(serverOK.stdout.contains("server.pem: OK"))
            let clientOK = try await verify("sslclient", "client.pem")
            #expect(clientOK.succeeded, "\(clientOK)")
            #expect(clientOK.stdout.contains("client.pem: OK"))

            let clientAsServer = try await verify("sslserver", "client.pem")
            #expect(!clientAsServer.succeeded, "\(clientAsServer)")
            let serverAsClient = try await verify("sslclient", "server.pem")
            #expect(!serverAsClient.succeeded, "\(serverAsClient)")

            // The CA checks itself as a root.
            let caSelf = try await openssl(["verify", "-CAfile", dir.file("ca.pem"), dir.file("ca.pem")], in: dir)
            #expect(caSelf.succeeded, "\(caSelf)")

            // OpenSSL reads the same SANs, subject and key usage that the Certificate API reports.
            let text = try await openssl(["x509", "-in", dir.file("server.pem"), "-noout", "-text"], in: dir)
            #expect(text.succeeded, "\(text)")
            #expect(text.stdout.contains("DNS:localhost, IP Address:127.0.0.1"))
            #expect(text.stdout.contains("TLS Web Server Authentication"))
            #expect(text.stdout.contains("CA:FALSE"))
            #expect(text.stdout.contains("Subject: CN = server") || text.stdout.contains("Subject: CN=server"))
            let clientText = try await openssl(["x509", "-in", dir.file("client.pem"), "-noout", "-subject"], in: dir)
            #expect(clientText.stdout.contains("O = group, CN = client") || clientText.stdout.contains("O=group, CN=client"), "\(clientText)")

            // The key files belong to their certificates, as openssl sees them too.
            let certKey = try await openssl(["x509", "-in", dir.file("server.pem"), "-noout", "-pubkey"], in: dir)
            let keyPub = try await openssl(["pkey", "-in", dir.file("server.key"), "-pubout"], in: dir)
            #expect(certKey.succeeded && keyPub.succeeded)
            #expect(certKey.stdout == keyPub.stdout)
            #expect(keyPub.stdout == (try server.privateKey.publicKeyPEM))
        }
    }

    @Test("a certificate from another CA fails verification, in openssl and in PKI")
    func foreignCA() async throws {
        try await withTemporaryDirectory { dir in
            let ca = try CertificateAuthority.create(commonName: "pair-ca")
            let other = try CertificateAuthority.create(commonName: "pair-ca")  // same name, different key
            let foreignServer = try other.issueServer(commonName: "server", dnsNames: ["localhost"])
            let foreignClient = try other.issueClient(commonName: "client")
            try PEMFile.write(ca.certificate.pem, to: dir.file("ca.pem"))
            try PEMFile.write(foreignServer.certificatePEM, to: dir.file("foreign-server.pem"))
            try PEMFile.write(foreignClient.certificatePEM, to: dir.file("foreign-client.pem"))

            let server = try await openssl(["verify", "-CAfile", dir.file("ca.pem"), "-purpose", "sslserver", dir.file("foreign-server.pem")], in: dir)
            #expect(!server.succeeded, "\(server)")
            let client = try await openssl(["verify", "-CAfile", dir.file("ca.pem"), "-purpose", "sslclient", dir.file("foreign-client.pem")], in: dir)
            #expect(!client.succeeded, "\(client)")

            #expect(throws: PKIError.self) { try ca.verify(foreignServer.certificate, for: .serverAuth) }
            #expect(throws: PKIError.self) { try ca.verify(foreignClient.certificate, for: .clientAuth) }
            #expect(!foreignServer.certificate.isSigned(by: ca.certificate))
            #expect(foreignServer.certificate.isSigned(by: other.certificate))
            // The other CA itself is no leaf of ours either.
            #expect(throws: PKIError.self) { try ca.verify(other.certificate, for: .serverAuth) }
        }
    }

    @Test("an expired certificate fails verification")
    func expired() async throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let leaf = try ca.issueServer(commonName: "short-lived", validity: 1)
        #expect(leaf.certificate.notAfter <= Date().addingTimeInterval(2))
        try await Task.sleep(for: .seconds(2.5))
        #expect(leaf.certificate.notAfter < Date())
        #expect(throws: PKIError.self) { try ca.verify(leaf.certificate, for: .serverAuth) }
    }

    // MARK: PEM

    @Test("PEM text and files round-trip; key files are private")
    func pemRoundTrip() async throws {
        try await withTemporaryDirectory { dir in
            let ca = try CertificateAuthority.create(commonName: "pair-ca")
            let issued = try ca.issueServer(commonName: "server", dnsNames: ["a.example"], ipAddresses: ["192.168.1.1"])

            // Text round trip.
            let pem = try issued.certificatePEM
            #expect(pem.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
            #expect(pem.hasSuffix("-----END CERTIFICATE-----\n"))
            let reparsed = try Certificate(pem: pem)
            #expect(try reparsed.pem == pem)
            #expect(reparsed.dnsNames == ["a.example"] && reparsed.ipAddresses == ["192.168.1.1"])
            let keyPEM = try issued.privateKeyPEM
            #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            let key = try PrivateKey(pem: keyPEM)
            #expect(try key.pem == keyPEM)
            #expect(try key.publicKeyPEM == issued.privateKey.publicKeyPEM)
            #expect(reparsed.matches(key))

            // Files.
            let certPath = dir.file("tls.crt")
            let keyPath = dir.file("tls.key")
            try PEMFile.write(issued, certificatePath: certPath, keyPath: keyPath)
            let keyMode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
            let certMode = try FileManager.default.attributesOfItem(atPath: certPath)[.posixPermissions] as? Int
            #expect(keyMode == 0o600)
            #expect(certMode == 0o644)
            #expect(try PEMFile.read(certPath) == pem)
            #expect(try PEMFile.readCertificate(certPath).pem == pem)
            #expect(try PEMFile.readPrivateKey(keyPath).publicKeyPEM == issued.privateKey.publicKeyPEM)
            // Overwriting is atomic and leaves no temporary files behind.
            try PEMFile.write(issued, certificatePath: certPath, keyPath: keyPath)
            let entries = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".out-") && !$0.hasPrefix(".err-") }
            #expect(Set(entries) == ["tls.crt", "tls.key"])

            // A CA reloaded from its PEMs issues certificates that chain to the original.
            try PEMFile.write(ca.certificate.pem, to: dir.file("ca.crt"))
            try PEMFile.write(ca.privateKey.pem, to: dir.file("ca.key"), privateKey: true)
            let reloaded = try CertificateAuthority(certificatePEM: PEMFile.read(dir.file("ca.crt")), privateKeyPEM: PEMFile.read(dir.file("ca.key")))
            let fromReloaded = try reloaded.issueClient(commonName: "later")
            try ca.verify(fromReloaded.certificate, for: .clientAuth)

            // A bundle keeps order.
            let bundle = try Certificate.bundle(pem: pem + ca.certificate.pem)
            #expect(bundle.count == 2)
            #expect(bundle[0].subjectCommonName == "server" && bundle[1].subjectCommonName == "pair-ca")
        }
    }

    // MARK: Bad input

    @Test("garbage PEM throws PKIError", arguments: [
        "",
        "garbage",
        "-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        String(repeating: "\u{0}", count: 64),
    ])
    func garbagePEM(text: String) {
        #expect(throws: PKIError.self) { try Certificate(pem: text) }
        #expect(throws: PKIError.self) { try Certificate.bundle(pem: text) }
        #expect(throws: PKIError.self) { try PrivateKey(pem: text) }
        #expect(throws: PKIError.self) { try CertificateAuthority(certificatePEM: text, privateKeyPEM: text) }
    }

    @Test("a truncated certificate or key throws PKIError")
    func truncatedPEM() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let pem = try ca.certificate.pem
        let keyPEM = try ca.privateKey.pem
        for cut in [pem.count / 2, pem.count - 30] {
            #expect(throws: PKIError.self) { try Certificate(pem: String(pem.prefix(cut))) }
        }
        #expect(throws: PKIError.self) { try PrivateKey(pem: String(keyPEM.prefix(keyPEM.count / 2))) }
        // A key where a certificate belongs, and the other way round.
        #expect(throws: PKIError.self) { try Certificate(pem: keyPEM) }
        #expect(throws: PKIError.self) { try PrivateKey(pem: pem) }
    }

    @Test("invalid names and addresses throw PKIError")
    func invalidRequests() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        #expect(throws: PKIError.self) { try CertificateAuthority.create(commonName: "") }
        #expect(throws: PKIError.self) { try CertificateAuthority.create(commonName: String(repeating: "c", count: 65)) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "") }
        #expect(throws: PKIError.self) { try ca.issueClient(commonName: "") }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", ipAddresses: ["999.1.1.1"]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", ipAddresses: ["localhost"]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", ipAddresses: [""]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", dnsNames: ["a,DNS:evil.example"]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", dnsNames: ["a b"]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", dnsNames: [""]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", dnsNames: ["héllo.example"]) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", validity: 0) }
        #expect(throws: PKIError.self) { try ca.issueServer(commonName: "s", validity: -10) }
        #expect(throws: PKIError.self) { try ca.issue(CertificateRequest(commonName: "s", usages: [])) }
        // Names that would be OpenSSL config syntax elsewhere are plain text in a subject.
        let odd = try ca.issueClient(commonName: "a,b=c/d", organizations: ["x, O=y"])
        #expect(odd.certificate.subjectCommonName == "a,b=c/d")
        #expect(odd.certificate.subjectOrganizations == ["x, O=y"])
    }

    @Test("a CA key that does not match the CA certificate, or a leaf as CA, throws PKIError")
    func mismatchedCA() throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let other = try CertificateAuthority.create(commonName: "other-ca")
        let leaf = try ca.issueServer(commonName: "leaf")
        #expect(throws: PKIError.self) {
            try CertificateAuthority(certificatePEM: ca.certificate.pem, privateKeyPEM: other.privateKey.pem)
        }
        #expect(throws: PKIError.self) {
            try CertificateAuthority(certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM)
        }
        // The matching pair loads.
        _ = try CertificateAuthority(certificatePEM: ca.certificate.pem, privateKeyPEM: ca.privateKey.pem)
    }

    @Test("missing and unwritable files throw PKIError.io")
    func fileErrors() async throws {
        try await withTemporaryDirectory { dir in
            #expect(throws: PKIError.self) { try PEMFile.read(dir.file("missing.pem")) }
            #expect(throws: PKIError.self) { try PEMFile.readCertificate(dir.file("missing.pem")) }
            #expect(throws: PKIError.self) { try PEMFile.write("x", to: dir.file("no/such/dir/file.pem")) }
            try "not a pem".write(toFile: dir.file("junk.pem"), atomically: true, encoding: .utf8)
            #expect(throws: PKIError.self) { try PEMFile.readCertificate(dir.file("junk.pem")) }
            #expect(throws: PKIError.self) { try PEMFile.readPrivateKey(dir.file("junk.pem")) }
        }
    }

    // MARK: A real TLS handshake

    @Test("curl completes mutual TLS with the CA's server and client certificates, and only with them")
    func mutualTLSHandshake() async throws {
        try await withTemporaryDirectory("tls") { dir in
            let files = try TLSFiles(in: dir)
            let foreign = try TLSFiles(in: dir, prefix: "foreign-")
            try await withDouble(try files.options()) { double in
                let port = double.port
                // By IP: the IP SAN 127.0.0.1 must match.
                let ok = try await curl(files.clientArguments + ["https://127.0.0.1:\(port)/version"], in: dir)
                #expect(ok.succeeded, "\(ok)")
                #expect(ok.stdout.contains("\"gitVersion\""))

                // By name: the DNS SAN must match (--resolve pins the name to loopback).
                let byName = try await curl(files.clientArguments + [
                    "--resolve", "localhost:\(port):127.0.0.1", "https://localhost:\(port)/version",
                ], in: dir)
                #expect(byName.succeeded, "\(byName)")
                let otherName = try await curl(files.clientArguments + [
                    "--resolve", "kubernetes.default.svc:\(port):127.0.0.1", "https://kubernetes.default.svc:\(port)/version",
                ], in: dir)
                #expect(otherName.succeeded, "\(otherName)")

                // A name that is not in the certificate is refused by the client.
                let wrongName = try await curl(files.clientArguments + [
                    "--resolve", "wrong.example:\(port):127.0.0.1", "https://wrong.example:\(port)/version",
                ], in: dir)
                #expect(!wrongName.succeeded, "\(wrongName)")

                // No client certificate: the server refuses the handshake.
                let anonymous = try await curl(["--cacert", files.caPath, "https://127.0.0.1:\(port)/version"], in: dir)
                #expect(!anonymous.succeeded, "\(anonymous)")
                #expect(!anonymous.stdout.contains("gitVersion"))

                // A client certificate from another CA: refused too.
                let stranger = try await curl([
                    "--cacert", files.caPath, "--cert", foreign.clientCertPath, "--key", foreign.clientKeyPath,
                    "https://127.0.0.1:\(port)/version",
                ], in: dir)
                #expect(!stranger.succeeded, "\(stranger)")
                #expect(!stranger.stdout.contains("gitVersion"))

                // A server certificate as client certificate (serverAuth only): refused.
                try PEMFile.write(files.server, certificatePath: dir.file("server.crt"), keyPath: dir.file("server.key"))
                let wrongUsage = try await curl([
                    "--cacert", files.caPath, "--cert", dir.file("server.crt"), "--key", dir.file("server.key"),
                    "https://127.0.0.1:\(port)/version",
                ], in: dir)
                #expect(!wrongUsage.succeeded, "\(wrongUsage)")

                // Trusting another CA: the client refuses the server.
                let untrusted = try await curl([
                    "--cacert", foreign.caPath, "--cert", files.clientCertPath, "--key", files.clientKeyPath,
                    "https://127.0.0.1:\(port)/version",
                ], in: dir)
                #expect(!untrusted.succeeded, "\(untrusted)")

                // The refused handshakes never reached the HTTP layer.
                #expect(double.requests.filter { $0.path == "/version" }.count == 3)
            }
        }
    }

    @Test("the double refuses to start with bad TLS material, without crashing")
    func badTLSMaterial() async throws {
        let ca = try CertificateAuthority.create(commonName: "pair-ca")
        let server = try ca.issueServer(commonName: "server", ipAddresses: ["127.0.0.1"])
        let good = KubeTestDoubleOptions(serverCertificatePEM: try server.certificatePEM, serverKeyPEM: try server.privateKeyPEM)
        for options in [
            KubeTestDoubleOptions(serverCertificatePEM: "garbage", serverKeyPEM: try server.privateKeyPEM),
            KubeTestDoubleOptions(serverCertificatePEM: try server.certificatePEM, serverKeyPEM: "garbage"),
            KubeTestDoubleOptions(serverCertificatePEM: try server.certificatePEM, serverKeyPEM: try server.privateKeyPEM, clientCAPEM: "garbage"),
        ] {
            await #expect(throws: KubeTestDoubleError.self) { try await KubeTestDouble.start(options).stop() }
        }
        // And the good material starts and stops twice over.
        let double = try await KubeTestDouble.start(good)
        #expect(double.port > 0 && double.baseURL == "https://127.0.0.1:\(double.port)")
        await double.stop()
        await double.stop()
    }

    @Test("a server certificate without the IP SAN fails when reached by IP")
    func ipSANMatters() async throws {
        try await withTemporaryDirectory("tls") { dir in
            let files = try TLSFiles(in: dir, serverIPs: [])
            try await withDouble(try files.options(mutualTLS: false)) { double in
                let byIP = try await curl(["--cacert", files.caPath, "https://127.0.0.1:\(double.port)/version"], in: dir)
                #expect(!byIP.succeeded, "\(byIP)")
                let byName = try await curl([
                    "--cacert", files.caPath, "--resolve", "localhost:\(double.port):127.0.0.1", "https://localhost:\(double.port)/version",
                ], in: dir)
                #expect(byName.succeeded, "\(byName)")
            }
        }
    }
}
