import Foundation
import KubeAPI
import OperatorEngine
import PostgresNIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Issue #6's figures, against real `tenops` processes (the binary beside this one), nothing
/// simulated:
/// - A: time from creating a TimesTenClassic (`bench-N`, the sample's spec) to
///   `status.highLevelState` Normal, polled every 20 ms; each pair is deleted and its pods gone
///   before the next. Against `tenops local --headless`, whose engine runs in its process.
/// - B: failover of the sample pair under continuous writes: from `kill -9` of the active's
///   postmaster to the other pod's promotion, to the writer's first acknowledged commit there
///   (with RETURN TWOSAFE that waits for the old active to be duplicated again) and to Normal;
///   and the acknowledged commits missing from the final active (must be 0). Same cluster as A.
/// - D (issue #7): switchovers of the same pair under the same writer, after B: from the request
///   (the annotation `tenops.io/action` patched) to the writer's first acknowledged commit on the
///   other pod, and to `status.lastAction` Succeeded; how the old active was re-attached (rewind
///   or basebackup). The acknowledged commits missing from the final active: once B and D are over.
/// - C: `tenops operator` as a process of its own, beside `tenops local --no-engine`: CPU and
///   RSS over a window of rest once the sample pair is Normal.
///
/// `tenops-bench pair [--runs N] [--switchovers N] [--skip-apply] [--skip-failover] [--skip-switchover] [--skip-cpu] [--rest-seconds S] [--logs DIR]`
enum PairBench {
    static let namespace = PairSample.namespace

    struct Options {
        var runs = 20
        var skipApply = false
        var skipFailover = false
        var switchovers = 20
        var skipSwitchover = false
        var skipCPU = false
        var restSeconds = 60
        /// The sample's `repReturnServiceAttribute`: `RETURN TWOSAFE` as shipped, or `NO RETURN`
        /// (the CRD's default: asynchronous replication, whose failover does not wait for the
        /// old active to stream again, and which may lose the last commits).
        var returnService = ReturnService.twoSafe
        /// Where the children's logs stay; nil: in the temporary directory, removed with it.
        var logDirectory: String?

        static let usage = "pair [--runs N] [--switchovers N] [--return-service twosafe|none] [--skip-apply] [--skip-failover] [--skip-switchover] [--skip-cpu] [--rest-seconds S] [--logs DIR]"

        init(_ arguments: [String]) throws {
            var rest = arguments[...]
            func value(_ flag: String) throws -> String {
                guard let value = rest.popFirst() else { throw BenchError("\(flag) needs a value; usage: \(Self.usage)") }
                return value
            }
            func count(_ flag: String) throws -> Int {
                guard let number = Int(try value(flag)), number > 0 else { throw BenchError("\(flag) takes a positive number") }
                return number
            }
            while let flag = rest.popFirst() {
                switch flag {
                case "--runs": runs = try count(flag)
                case "--switchovers": switchovers = try count(flag)
                case "--rest-seconds": restSeconds = try count(flag)
                case "--skip-apply": skipApply = true
                case "--skip-failover": skipFailover = true
                case "--skip-switchover": skipSwitchover = true
                case "--skip-cpu": skipCPU = true
                case "--logs": logDirectory = try value(flag)
                case "--return-service":
                    let name = try value(flag)
                    guard let service = ReturnService(rawValue: name) else { throw BenchError("--return-service takes twosafe or none, not \(name)") }
                    returnService = service
                default: throw BenchError("unknown option \(flag); usage: \(Self.usage)")
                }
            }
        }
    }

    static func run() async throws {
        print("pair")
        fflush(nil)
        let options = try Options(Bench.options)
        var figures: [Figure] = []
        let writes = !options.skipFailover || !options.skipSwitchover
        if !options.skipApply || writes {
            let sampleFlags = options.returnService == .twoSafe ? [] : ["--no-sample"]
            try await LocalClusterRun.with("engine", options: options, ["--node-grace-period", "4"] + sampleFlags) { cluster in
                if options.returnService != .twoSafe { try await createSample(cluster.client, returnService: options.returnService) }
                print("sample pair: \(options.returnService.attribute)")
                _ = try await waitForNormal(cluster.client, PairSample.name, timeout: .seconds(300))
                if !options.skipApply { figures += try await applyToNormal(cluster.client, runs: options.runs) }
                if writes { figures += try await underWrites(cluster, options: options) }
            }
        }
        if !options.skipCPU {
            try await LocalClusterRun.with("operator", options: options, ["--no-engine"]) { cluster in
                figures += try await operatorAtRest(cluster, seconds: options.restSeconds)
            }
        }
        for entry in figures { figure(entry.name, entry.value, target: entry.target) }
    }

    struct Figure {
        let name: String
        let value: String
        var target: String? = nil
    }

    enum ReturnService: String {
        case twoSafe = "twosafe"
        case none

        var attribute: String { self == .twoSafe ? "RETURN TWOSAFE" : "NO RETURN" }
    }

    /// The sample's objects, its pair with `returnService` instead of the shipped attribute.
    static func createSample(_ client: KubeClient, returnService: ReturnService) async throws {
        for var object in try PairSample.objects() {
            let isPair = object["kind"]?.stringValue == TimesTenClassic.resourceType.kind
            if isPair { object.setValue(.string(returnService.attribute), at: ["spec", "ttspec", "repReturnServiceAttribute"]) }
            let resource = isPair ? TimesTenClassic.resourceType : .secrets
            // `tenops local` installs the CRD once its API server is up: until then, 404.
            let deadline = ContinuousClock.now + .seconds(60)
            while true {
                do {
                    _ = try await client.create(resource, namespace: namespace, object: object)
                    break
                } catch {
                    guard error.isNotFound, ContinuousClock.now < deadline else { throw error }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    // MARK: - A: apply to Normal

    static func applyToNormal(_ client: KubeClient, runs: Int) async throws -> [Figure] {
        guard let template = try PairSample.objects().first(where: { $0["kind"]?.stringValue == TimesTenClassic.resourceType.kind }) else {
            throw BenchError("the embedded sample has no TimesTenClassic")
        }
        var samples = Samples()
        var failed = 0
        var outlived = 0
        for run in 0..<runs {
            var pair = TimesTenClassic(json: template)
            pair.metadata.name = "bench-\(run)"
            let started = ContinuousClock.now
            let created = try await client.create(pair)
            do {
                _ = try await waitForNormal(client, pair.name, timeout: .seconds(120))
                samples.add((ContinuousClock.now - started).inSeconds)
                progress("apply \(pair.name): Normal after \(seconds(samples.values.last!))")
            } catch {
                failed += 1
                progress("apply \(pair.name): \(error)")
            }
            try await client.delete(TimesTenClassic.self, name: pair.name, namespace: namespace)
            let selector = ListOptions(labelSelector: "tenops.io/pair=\(pair.name)")
            let podsGone: () async -> Bool = {
                (try? await client.list(Pod.self, namespace: namespace, options: selector))?.items.isEmpty ?? false
            }
            do {
                try await NodeBench.waitUntil("the pods of \(pair.name) are gone", timeout: .seconds(45), podsGone)
            } catch {
                // The cascade deleted what existed at the time of the DELETE; whatever owns the
                // pods now was written after it. Say what it is, remove it, and go on.
                outlived += 1
                let set = try? await client.get(StatefulSet.self, name: pair.name, namespace: namespace)
                progress("\(pair.name) (uid \(created.metadata.uid ?? "?")): pods still there 45 s after the DELETE; StatefulSet "
                         + (set.map { "created \($0.json["metadata"]?["creationTimestamp"] ?? .null), owners \($0.json["metadata"]?["ownerReferences"] ?? .null)" } ?? "gone")
                         + "; deleting the StatefulSet")
                if set != nil { try await client.delete(StatefulSet.self, name: pair.name, namespace: namespace) }
                try await NodeBench.waitUntil("the pods of \(pair.name) are gone", timeout: .seconds(120), podsGone)
            }
        }
        var figures = [
            Figure(name: "apply to Normal, p50 over \(samples.values.count) pairs", value: seconds(samples.percentile(50)), target: "<= 15 s"),
            Figure(name: "apply to Normal, p99", value: seconds(samples.percentile(99))),
            Figure(name: "apply to Normal, min / max",
                   value: "\(seconds(samples.percentile(0))) / \(seconds(samples.percentile(100)))"),
        ]
        if failed > 0 { figures.append(Figure(name: "pairs not Normal within 120 s", value: "\(failed) of \(runs)", target: "0")) }
        if outlived > 0 {
            figures.append(Figure(name: "pairs whose pods outlived their deletion by 45 s", value: "\(outlived) of \(runs)", target: "0"))
        }
        return figures
    }

    // MARK: - B and D: failovers and switchovers under writes

    /// B, then D, under one writer; then the acknowledged commits missing from the final active.
    static func underWrites(_ cluster: LocalClusterRun, options: Options) async throws -> [Figure] {
        let client = cluster.client
        let writer = Writer(client: client, log: WriteLog())
        try await writer.createTable(on: try await waitForNormal(client, PairSample.name, timeout: .seconds(120)))
        let writing = Task { await writer.run() }
        do {
            var figures: [Figure] = []
            var lostInFailovers: Set<Int64> = []
            if !options.skipFailover {
                figures += try await failovers(cluster, writer: writer, runs: options.runs, returnService: options.returnService)
                // What the failovers lost, so that the switchovers' own losses can be told apart.
                // The acknowledgements first: the writer goes on, and what it commits after the
                // read below would look lost.
                let acknowledged = await writer.log.acks.map(\.id)
                let active = try await waitForNormal(client, PairSample.name, timeout: .seconds(120))
                let present = try await writer.ids(on: try requireValue(active.activeAddress, "the active's address"))
                lostInFailovers = Set(acknowledged.filter { !present.contains($0) })
                figures.append(Figure(name: "lost acknowledged commits over the failovers", value: "\(lostInFailovers.count)",
                                      target: options.returnService == .twoSafe ? "0" : "report (NO RETURN is asynchronous)"))
            }
            if !options.skipSwitchover { figures += try await switchovers(client, writer: writer, runs: options.switchovers) }
            writing.cancel()
            await writing.value
            // Every acknowledged commit must be on the active that is left.
            let final = try await waitForNormal(client, PairSample.name, timeout: .seconds(120))
            let present = try await writer.ids(on: try requireValue(final.activeAddress, "the active's address"))
            let acknowledged = await writer.log.acks.map(\.id)
            let lost = acknowledged.filter { !present.contains($0) }
            if !lost.isEmpty { progress("lost acknowledged ids: \(lost.prefix(50).map(String.init).joined(separator: ", "))") }
            // Asynchronous replication promises nothing for the last commits before a crash; a
            // switchover loses nothing in either mode.
            if !options.skipSwitchover {
                figures.append(Figure(name: "lost acknowledged commits over the switchovers",
                                      value: "\(lost.filter { !lostInFailovers.contains($0) }.count)", target: "0"))
            }
            figures.append(Figure(name: "lost acknowledged commits in all", value: "\(lost.count)",
                                  target: options.returnService == .twoSafe ? "0" : "report (NO RETURN is asynchronous)"))
            figures.append(Figure(name: "acknowledged commits in total", value: "\(acknowledged.count) (rows on the final active: \(present.count))"))
            return figures
        } catch {
            writing.cancel()
            await writing.value
            throw error
        }
    }

    static func failovers(_ cluster: LocalClusterRun, writer: Writer, runs: Int, returnService: ReturnService) async throws -> [Figure] {
        let mode = returnService == .twoSafe ? "TWOSAFE" : "NO RETURN"
        let client = cluster.client
        var toCommit = Samples()
        var toNormal = Samples()
        var toPromotion = Samples()
        var noCommit = 0
        var steadyCommits = 0
        for run in 0..<runs {
            // Normal with a known active, and the writer committing there since.
            let before = try await waitForNormal(client, PairSample.name, timeout: .seconds(300))
            let normal = ContinuousClock.now
            let active = try requireValue(before.active, "the active pod")
            let other = try requireValue(before.otherPod, "the standby pod")
            let otherAddress = try requireValue(before.otherAddress, "the standby's address")
            try await NodeBench.waitUntil("a commit on the active \(active)", timeout: .seconds(60)) {
                await writer.log.hasAck(on: before.activeAddress ?? "", after: normal)
            }
            // One second of steady writes on the active, then the kill.
            let steadyFrom = await writer.log.acks.count
            try await Task.sleep(for: .seconds(1))
            steadyCommits += await writer.log.acks.count - steadyFrom
            // A session on the standby, opened beforehand, tells when it is promoted.
            let probe = try await writer.connect(otherAddress)
            let pid = try await postmaster(of: active, under: cluster.directory)
            let mark = await writer.log.acks.count
            let killed = ContinuousClock.now
            guard kill(pid, SIGKILL) == 0 else { throw BenchError("kill(\(pid)): \(String(cString: strerror(errno)))") }

            // Watched side by side: the other pod's promotion, the writer's first commit there,
            // and the pair's status back to Normal with the other pod active.
            var promoted: ContinuousClock.Instant?
            var first: WriteLog.Ack?
            var normalAgain: ContinuousClock.Instant?
            while promoted == nil || first == nil || normalAgain == nil, ContinuousClock.now - killed < .seconds(120) {
                if promoted == nil, await writer.isPrimary(probe) { promoted = .now }
                if first == nil { first = await writer.log.firstAck(on: otherAddress, from: mark) }
                if normalAgain == nil, let view = try? await PairView.read(client, PairSample.name),
                   view.state == "Normal", view.active == other { normalAgain = .now }
                try await Task.sleep(for: .milliseconds(5))
            }
            Task { [probe] in try? await probe.close() }
            if let promoted { toPromotion.add((promoted - killed).inSeconds) }
            if let first {
                toCommit.add((first.at - killed).inSeconds)
            } else {
                noCommit += 1
            }
            if normalAgain == nil {
                _ = try await waitForNormal(client, PairSample.name, timeout: .seconds(300)) { $0.active == other }
                normalAgain = .now
            }
            toNormal.add((normalAgain! - killed).inSeconds)
            let writerError = await writer.log.lastError ?? "no error"
            let abandoned = await writer.log.abandoned.filter { $0.at > killed }
            progress("failover \(run + 1): killed \(active)'s postmaster \(pid); \(other) promoted after "
                     + (promoted.map { seconds(($0 - killed).inSeconds) } ?? "?") + ", first commit on it after "
                     + (first.map { seconds(($0.at - killed).inSeconds) } ?? "none within 120 s (\(writerError))")
                     + ", Normal again after \(seconds(toNormal.values.last!))"
                     + (abandoned.isEmpty ? "" : "; writer calls left behind: "
                        + abandoned.map { "on \($0.host) at +\(seconds(($0.at - killed).inSeconds)) (\($0.why))" }.joined(separator: ", ")))
        }
        var figures = [
            Figure(name: "failover (\(mode)), kill -9 to first commit on new active, p50", value: seconds(toCommit.percentile(50)), target: "<= 1 s"),
            Figure(name: "failover (\(mode)), kill -9 to first commit on new active, p99", value: seconds(toCommit.percentile(99)), target: "<= 2 s"),
            Figure(name: "failover, kill -9 to first commit, min / max (of \(toCommit.values.count))",
                   value: "\(seconds(toCommit.percentile(0))) / \(seconds(toCommit.percentile(100)))"),
            Figure(name: "failover, kill -9 to promotion (recovery ended), p50 / max",
                   value: "\(seconds(toPromotion.percentile(50))) / \(seconds(toPromotion.percentile(100)))"),
            Figure(name: "failover, kill -9 to Normal again, p50 / max",
                   value: "\(seconds(toNormal.percentile(50))) / \(seconds(toNormal.percentile(100)))"),
        ]
        figures.append(Figure(name: "writer while Normal (BEGIN, INSERT, COMMIT one at a time)",
                              value: "\(steadyCommits / runs) commits/s"))
        let left = await writer.log.abandoned
        figures.append(Figure(name: "writer calls left behind: another active / 10 s silent",
                              value: "\(left.filter { $0.why == Abandoned.moved }.count) / \(left.filter { $0.why != Abandoned.moved }.count)"))
        if noCommit > 0 { figures.append(Figure(name: "failovers without a commit within 120 s", value: "\(noCommit) of \(runs)", target: "0")) }
        return figures
    }

    /// D: each run waits for Normal and a commit on the active, asks for a switchover through the
    /// annotation, and watches side by side the writer's first commit on the other pod and
    /// `status.lastAction` (the same id) until it ends.
    static func switchovers(_ client: KubeClient, writer: Writer, runs: Int) async throws -> [Figure] {
        var toCommit = Samples()
        var toSucceeded = Samples()
        var toPromoted = Samples()
        var methods: [String: Int] = [:]
        var failed = 0
        var noCommit = 0
        let phaseStart = ContinuousClock.now
        for run in 0..<runs {
            // Normal with both pods Healthy: a standby still catching up would see it refused.
            let before = try await waitForNormal(client, PairSample.name, timeout: .seconds(300)) { $0.bothHealthy }
            let normal = ContinuousClock.now
            let active = try requireValue(before.active, "the active pod")
            let other = try requireValue(before.otherPod, "the standby pod")
            let otherAddress = try requireValue(before.otherAddress, "the standby's address")
            try await NodeBench.waitUntil("a commit on the active \(active)", timeout: .seconds(60)) {
                await writer.log.hasAck(on: before.activeAddress ?? "", after: normal)
            }
            try await Task.sleep(for: .seconds(1))  // steady writes on the active

            let request = ManualActionRequest(id: "bench-sw-\(run + 1)-\(UUID().uuidString.lowercased().prefix(8))", verb: .switchover)
            let patch: JSONValue = ["metadata": ["annotations": [.init(stringLiteral: ManualActionRequest.annotation): .string(request.annotationValue)]]]
            let mark = await writer.log.acks.count
            let requested = ContinuousClock.now
            _ = try await client.patch(TimesTenClassic.self, name: PairSample.name, namespace: namespace, patchType: .merge, patch: patch)

            // The writer's first commit on the other pod, and the action's end; its phases as seen.
            var first: WriteLog.Ack?
            var ended: (record: ActionRecord, at: ContinuousClock.Instant)?
            var phases: [(phase: String, at: ContinuousClock.Instant)] = []
            while first == nil || ended == nil, ContinuousClock.now - requested < .seconds(120) {
                if first == nil { first = await writer.log.firstAck(on: otherAddress, from: mark) }
                if ended == nil, let record = try? await client.get(TimesTenClassic.self, name: PairSample.name, namespace: namespace).status.lastAction,
                   record.id == request.id {
                    let phase = record.isRunning ? record.phase ?? "running" : record.state ?? "?"
                    if phases.last?.phase != phase { phases.append((phase, .now)) }
                    if !record.isRunning && record.state != nil { ended = (record, .now) }
                }
                // Once the action failed, the other pod may never be written to.
                if let ended, ended.record.state != ActionState.succeeded, first == nil { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            if let first { toCommit.add((first.at - requested).inSeconds) } else { noCommit += 1 }
            // Phase reattaching: the new active takes writes; its commits wait for the old one to stream again.
            if let promoted = phases.first(where: { $0.phase == "reattaching" }) { toPromoted.add((promoted.at - requested).inSeconds) }
            if let ended, ended.record.state == ActionState.succeeded {
                toSucceeded.add((ended.at - requested).inSeconds)
                methods[ended.record.method ?? "not recorded", default: 0] += 1
            } else {
                failed += 1
            }
            let abandoned = await writer.log.abandoned.filter { $0.at > requested }
            let writerError = await writer.log.lastError ?? "no error"
            progress("switchover \(run + 1) (\(request.id)): \(active) -> \(other); first commit on \(other) after "
                     + (first.map { seconds(($0.at - requested).inSeconds) } ?? "none within 120 s (\(writerError))")
                     + "; " + (ended.map { "\($0.record.state ?? "?") after \(seconds(($0.at - requested).inSeconds))"
                        + ($0.record.method.map { " by \($0)" } ?? "") + ": \($0.record.message ?? "")" } ?? "not ended within 120 s")
                     + "; phases " + phases.map { "\($0.phase) +\(seconds(($0.at - requested).inSeconds))" }.joined(separator: ", ")
                     + (abandoned.isEmpty ? "" : "; writer calls left behind: "
                        + abandoned.map { "on \($0.host) at +\(seconds(($0.at - requested).inSeconds)) (\($0.why))" }.joined(separator: ", ")))
        }
        let otherMethods = methods.filter { $0.key != "rewind" && $0.key != "basebackup" }.map { "\($0.key) \($0.value)" }.sorted()
        var figures = [
            Figure(name: "switchover, request to first commit on new active, p50", value: seconds(toCommit.percentile(50)), target: "<= 1 s"),
            Figure(name: "switchover, request to first commit on new active, p99", value: seconds(toCommit.percentile(99))),
            Figure(name: "switchover, request to first commit, min / max (of \(toCommit.values.count))",
                   value: "\(seconds(toCommit.percentile(0))) / \(seconds(toCommit.percentile(100)))"),
            Figure(name: "switchover, request to new active writable, p50 / max",
                   value: "\(seconds(toPromoted.percentile(50))) / \(seconds(toPromoted.percentile(100)))"),
            Figure(name: "switchover, request to Succeeded, p50 / p99 (of \(toSucceeded.values.count))",
                   value: "\(seconds(toSucceeded.percentile(50))) / \(seconds(toSucceeded.percentile(99)))"),
            Figure(name: "switchover, old active re-attached by rewind / basebackup",
                   value: "\(methods["rewind", default: 0]) / \(methods["basebackup", default: 0])"
                       + (otherMethods.isEmpty ? "" : " (other: \(otherMethods.joined(separator: ", ")))")),
        ]
        let left = await writer.log.abandoned.filter { $0.at > phaseStart }
        figures.append(Figure(name: "switchover, calls left behind: other active / 10 s silent",
                              value: "\(left.filter { $0.why == Abandoned.moved }.count) / \(left.filter { $0.why != Abandoned.moved }.count)"))
        if failed > 0 { figures.append(Figure(name: "switchovers not Succeeded within 120 s", value: "\(failed) of \(runs)", target: "0")) }
        if noCommit > 0 { figures.append(Figure(name: "switchovers without a commit within 120 s", value: "\(noCommit) of \(runs)", target: "0")) }
        return figures
    }

    /// The postmaster of `pod`: `pgrep -f` on its command line, then that command line checked.
    static func postmaster(of pod: String, under directory: String) async throws -> pid_t {
        let pattern = "postgres -D \(directory)/[^ ]*/tt-persistent-\(pod)/pgdata( |$)"
        let found = try await output(of: "/usr/bin/pgrep", ["-f", pattern]).split(whereSeparator: \.isNewline).compactMap { pid_t($0) }
        let postmasters = found.filter { pid in
            let arguments = commandLine(pid)
            guard let flag = arguments.firstIndex(of: "-D"), flag + 1 < arguments.count else { return false }
            let dataDirectory = arguments[flag + 1]
            return arguments[0].hasSuffix("/postgres") && dataDirectory.hasPrefix(directory + "/")
                && dataDirectory.hasSuffix("/tt-persistent-\(pod)/pgdata")
        }
        guard postmasters.count == 1 else {
            throw BenchError("pgrep -f '\(pattern)' found \(found); postmasters of \(pod) among them: \(postmasters)")
        }
        return postmasters[0]
    }

    // MARK: - C: the operator at rest

    static func operatorAtRest(_ cluster: LocalClusterRun, seconds window: Int) async throws -> [Figure] {
        let engine = try cluster.start("operator", ["operator", "--kubeconfig", cluster.kubeconfig, "-n", namespace])
        _ = try await waitForNormal(cluster.client, PairSample.name, timeout: .seconds(300))
        try await Task.sleep(for: .seconds(10))  // settle
        let before = try ProcessUsage(pid: engine.pid)
        try await Task.sleep(for: .seconds(window))
        let after = try ProcessUsage(pid: engine.pid)
        let cpu = (after.cpuSeconds - before.cpuSeconds) / Double(window) * 100
        return [
            Figure(name: "tenops operator at rest, pair Normal, CPU over \(window) s", value: String(format: "%.2f %% of one core", cpu)),
            Figure(name: "tenops operator at rest, RSS", value: String(format: "%.1f MiB", Double(after.rssKiB) / 1024)),
        ]
    }

    // MARK: - Helpers

    /// Polls the pair every 20 ms until it is Normal with both addresses known and `condition` holds.
    static func waitForNormal(_ client: KubeClient, _ name: String, timeout: Duration,
                              _ condition: (PairView) -> Bool = { _ in true }) async throws -> PairView {
        let deadline = ContinuousClock.now + timeout
        var last: PairView?
        while ContinuousClock.now < deadline {
            if let view = try? await PairView.read(client, name) {
                last = view
                if view.state == "Normal", view.activeAddress != nil, view.otherAddress != nil, condition(view) { return view }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw BenchError("\(name) was not Normal within \(timeout): state \(last?.state ?? "unknown"), active \(last?.active ?? "none")")
    }

    static func seconds(_ value: Double) -> String { String(format: "%.2f s", value) }

    static func progress(_ line: String) {
        FileHandle.standardError.write(Data("  pair: \(line)\n".utf8))
    }

    /// Runs a short command to its end, polling so that the cooperative pool is never blocked.
    static func output(of executable: String, _ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(2)) }
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// /proc/PID/cmdline as arguments; empty when the process is gone.
    static func commandLine(_ pid: pid_t) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// What the pair's status says: its state, the active pod and each pod's IP.
struct PairView {
    let state: String?
    /// Both pods' own states are Healthy (a switchover is refused otherwise).
    let bothHealthy: Bool
    let active: String?
    let otherPod: String?
    let activeAddress: String?
    let otherAddress: String?

    static func read(_ client: KubeClient, _ name: String) async throws -> PairView {
        let status = try await client.get(TimesTenClassic.self, name: name, namespace: PairBench.namespace).status
        let pods = PairNames(name: name, namespace: PairBench.namespace).pods
        let active = status.activePods.flatMap { pods.contains($0) ? $0 : nil }
        let other = active.flatMap { active in pods.first { $0 != active } }
        func address(_ pod: String?) -> String? { pod.flatMap { status[pod: $0]?.podStatus.podIP } }
        let healthy = pods.allSatisfy { status[pod: $0]?.highLevelState == "Healthy" }
        return PairView(state: status.highLevelState, bothHealthy: healthy, active: active, otherPod: other,
                        activeAddress: address(active), otherAddress: address(other))
    }
}

/// Every commit the writer saw acknowledged, in order.
actor WriteLog {
    struct Ack {
        let id: Int64
        let host: String
        let at: ContinuousClock.Instant
    }

    private(set) var acks: [Ack] = []
    private(set) var lastError: String?
    private var lastID: Int64 = 0

    func nextID() -> Int64 {
        lastID += 1
        return lastID
    }

    /// Calls left behind without an answer: when, and on which server.
    private(set) var abandoned: [(host: String, at: ContinuousClock.Instant, why: String)] = []

    func acknowledged(_ ack: Ack) { acks.append(ack) }
    func failed(_ error: any Error, host: String) {
        lastError = String(reflecting: error)
        if let error = error as? Abandoned { abandoned.append((host, .now, error.why)) }
    }

    func firstAck(on host: String, from index: Int) -> Ack? { acks[index...].first { $0.host == host } }
    func hasAck(on host: String, after instant: ContinuousClock.Instant) -> Bool {
        acks.last { $0.host == host }.map { $0.at > instant } ?? false
    }
}

/// Inserts rows one at a time into `bench_rows`, each in its own transaction, so that a commit
/// counts as acknowledged only once COMMIT has answered (with RETURN TWOSAFE: once the standby
/// has it). It writes to the pod the pair's status names active, else to the other one, and
/// reconnects after every failure.
struct Writer: Sendable {
    let client: KubeClient
    let log: WriteLog
    let logger: Logger = {
        var logger = Logger(label: "tenops-bench.pair")
        logger.logLevel = .critical
        return logger
    }()

    func createTable(on pair: PairView) async throws {
        let session = try await connect(try requireValue(pair.activeAddress, "the active's address"))
        defer { Task { try? await session.close() } }
        try await session.query("DROP TABLE IF EXISTS bench_rows", logger: logger)
        try await session.query("CREATE TABLE bench_rows (id bigint PRIMARY KEY)", logger: logger)
    }

    func ids(on address: String) async throws -> Set<Int64> {
        let session = try await connect(address)
        defer { Task { try? await session.close() } }
        var ids = Set<Int64>()
        for try await row in try await session.query("SELECT id FROM bench_rows", logger: logger) { ids.insert(try row.decode(Int64.self)) }
        return ids
    }

    /// Whether `session`'s server takes writes (is out of recovery); false when it cannot tell.
    func isPrimary(_ session: PostgresConnection) async -> Bool {
        let logger = self.logger
        let rows = try? await abandoning(after: .seconds(2)) {
            try await session.query("SELECT NOT pg_is_in_recovery()", logger: logger).collect()
        }
        return (try? rows?.first?.decode(Bool.self)) ?? false
    }

    func run() async {
        var current: (session: PostgresConnection, host: String)?
        while !Task.isCancelled {
            if current == nil {
                let pair = try? await PairView.read(client, PairSample.name)
                for host in [pair?.activeAddress, pair?.otherAddress].compactMap({ $0 }) {
                    if let session = try? await connect(host) {
                        current = (session, host)
                        break
                    }
                }
            }
            guard let (session, host) = current else {
                try? await Task.sleep(for: .milliseconds(10))
                continue
            }
            let id = await log.nextID()
            do {
                try await insert(id, on: session, host: host)
                await log.acknowledged(.init(id: id, host: host, at: .now))
            } catch {
                await log.failed(error, host: host)
                Task { try? await session.close() }  // not awaited: a close may hang as well
                current = nil
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        if let session = current?.session { Task { try? await session.close() } }
    }

    /// BEGIN, INSERT, COMMIT on `host`. Left behind, unacknowledged, once the pair's status names
    /// another pod active (as a client following the operator would), or after 10 s without an answer.
    func insert(_ id: Int64, on session: PostgresConnection, host: String) async throws {
        let logger = self.logger
        let client = self.client
        try await abandoning(after: .seconds(10), while: {
            (try? await PairView.read(client, PairSample.name))?.activeAddress.map { $0 == host } ?? true
        }) {
            try await session.withTransaction(logger: logger) { session in
                _ = try await session.query("INSERT INTO bench_rows (id) VALUES (\(id))", logger: logger)
            }
        }
    }

    func connect(_ host: String) async throws -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: host, port: 5432, username: "admin", password: "CHANGE-ME", database: PairSample.name, tls: .disable)
        configuration.options.connectTimeout = .seconds(2)
        let logger = self.logger
        return try await abandoning(after: .seconds(10)) { [configuration] in
            try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        }
    }
}

/// A client call left behind without its answer.
struct Abandoned: Error, CustomStringConvertible {
    static let moved = "the pair's status names another active"
    let why: String
    var description: String { "left behind: \(why)" }
}

/// `operation`'s result, or `Abandoned` once `limit` has passed without one, or once `wanted`
/// (asked every 20 ms after the first 200 ms) says no. The operation is then left to end on its
/// own, never awaited: a PostgresNIO transaction in flight when its server was killed sometimes
/// never ends (its answer unread, the socket in CLOSE_WAIT), and must not stop the benchmark.
func abandoning<T: Sendable>(after limit: Duration, while wanted: (@Sendable () async -> Bool)? = nil,
                             _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let once = OnceBox(continuation)
        let timer = Task {
            let deadline = ContinuousClock.now + limit
            try await Task.sleep(for: min(limit, .milliseconds(200)))
            while ContinuousClock.now < deadline {
                if let wanted, !(await wanted()) { return once.resume(.failure(Abandoned(why: Abandoned.moved))) }
                try await Task.sleep(for: .milliseconds(20))
            }
            once.resume(.failure(Abandoned(why: "no answer within \(limit)")))
        }
        Task {
            do {
                once.resume(.success(try await operation()))
            } catch {
                once.resume(.failure(error))
            }
            timer.cancel()
        }
    }
}

/// A continuation resumed by whichever comes first.
final class OnceBox<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>
    init(_ continuation: CheckedContinuation<T, any Error>) { self.continuation = Mutex(continuation) }
    func resume(_ result: Result<T, any Error>) { continuation.withLock { $0.take() }?.resume(with: result) }
}

/// `tenops local --headless` in a fresh temporary directory, and the other `tenops` processes
/// started beside it. `with` stops every one of them by PID and removes the directory, also
/// when the body throws.
final class LocalClusterRun {
    let directory: String
    let kubeconfig: String
    let client: KubeClient
    private let logDirectory: String
    private let label: String
    private var children: [TenopsChild] = []

    private init(directory: String, logDirectory: String, label: String, kubeconfig: String, client: KubeClient) {
        self.directory = directory
        self.logDirectory = logDirectory
        self.label = label
        self.kubeconfig = kubeconfig
        self.client = client
    }

    static func with(_ label: String, options: PairBench.Options, _ arguments: [String],
                     _ body: (LocalClusterRun) async throws -> Void) async throws {
        // Every `tenops local` gives its pods the same loopback addresses.
        if let other = otherLocalsWithPods(than: nil).first {
            throw BenchError("another tenops local runs pods (pid \(other): \(PairBench.commandLine(other).joined(separator: " "))); "
                             + "they take the same loopback addresses as this benchmark's: stop it first")
        }
        let directory = "/tmp/tenops-bench-pair-\(UUID().uuidString.prefix(8))"
        let logDirectory = options.logDirectory ?? directory
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        let state = "\(directory)/state"
        var local: TenopsChild?
        var cluster: LocalClusterRun?
        do {
            let started = try TenopsChild(["local", "--headless", "--dir", state] + arguments, log: "\(logDirectory)/\(label)-local.log")
            local = started
            let kubeconfig = "\(state)/kubeconfig"
            var config: ClusterConfig?
            try await NodeBench.waitUntil("tenops local writes \(kubeconfig)", timeout: .seconds(60)) {
                config = try? ClusterConfig.load(kubeconfig: kubeconfig)
                return config != nil || !started.isRunning
            }
            guard let config, started.isRunning else { throw BenchError("tenops local ended:\n\(started.tail())") }
            let run = LocalClusterRun(directory: state, logDirectory: logDirectory, label: label, kubeconfig: kubeconfig,
                                      client: KubeClient(config: config))
            run.children = [started]
            cluster = run
            let ours = started.pid
            let watch = Task {
                var seen = Set<pid_t>()
                while !Task.isCancelled {
                    seen.formUnion(otherLocalsWithPods(than: ours))
                    try? await Task.sleep(for: .seconds(1))
                }
                return seen
            }
            do {
                try await body(run)
            } catch {
                watch.cancel()
                throw error
            }
            watch.cancel()
            let others = await watch.value
            if !others.isEmpty {
                PairBench.progress("WARNING: another tenops local (pids \(others.sorted())) ran pods during this measurement, "
                                   + "on the same loopback addresses: these figures may be disturbed")
            }
        } catch {
            if let local { PairBench.progress("the end of \(local.log):\n\(local.tail())") }
            await stop(cluster?.children ?? local.map { [$0] } ?? [], directory: directory)
            throw error
        }
        await stop(cluster?.children ?? [], directory: directory)
    }

    private static func processIDs() -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
    }

    /// `tenops local` processes other than `ours` that have children: their pods' processes.
    private static func otherLocalsWithPods(than ours: pid_t?) -> [pid_t] {
        let processes = processIDs()
        let locals = processes.filter { pid in
            let arguments = PairBench.commandLine(pid)
            return pid != ours && arguments.count > 1 && arguments[0].hasSuffix("tenops") && arguments[1] == "local"
        }
        guard !locals.isEmpty else { return [] }
        // /proc/PID/stat: after the name come the state and the parent's PID.
        let parents = Set(processes.compactMap { pid -> pid_t? in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let name = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(after: name)...].split(separator: " ").dropFirst().first.flatMap { pid_t($0) }
        })
        return locals.filter(parents.contains)
    }

    /// Starts `tenops ARGUMENTS`, stopped with the cluster.
    func start(_ name: String, _ arguments: [String]) throws -> TenopsChild {
        let child = try TenopsChild(arguments, log: "\(logDirectory)/\(label)-\(name).log")
        children.append(child)
        return child
    }

    /// Stops the children, the last started first; then kills by PID any process still running
    /// from the state directory (a pod's server that outlived its node), and removes the directory.
    private static func stop(_ children: [TenopsChild], directory: String) async {
        for child in children.reversed() { await child.stop() }
        let leftovers = processIDs().filter { PairBench.commandLine($0).contains { $0.contains(directory) } }
        if !leftovers.isEmpty {
            PairBench.progress("processes of \(directory) outlived tenops local, killing: \(leftovers)")
            for pid in leftovers { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A `tenops` process (the binary beside this one), its output in a log file, stopped by PID.
final class TenopsChild {
    let log: String
    private let process = Process()

    init(_ arguments: [String], log: String) throws {
        let ownBinary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let tenops = URL(fileURLWithPath: ownBinary).deletingLastPathComponent().appendingPathComponent("tenops").path
        guard FileManager.default.isExecutableFile(atPath: tenops) else { throw BenchError("\(tenops) is not built") }
        guard FileManager.default.createFile(atPath: log, contents: nil), let output = FileHandle(forWritingAtPath: log) else {
            throw BenchError("cannot write \(log)")
        }
        self.log = log
        process.executableURL = URL(fileURLWithPath: tenops)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    func tail(_ count: Int = 40) -> String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(count).joined(separator: "\n")
    }

    /// SIGTERM, then SIGKILL after 20 s.
    func stop() async {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            PairBench.progress("\(process.arguments?.first ?? "tenops") (\(pid)) still running 20 s after SIGTERM: SIGKILL")
            kill(pid, SIGKILL)
        }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// utime + stime from /proc/PID/stat and VmRSS from /proc/PID/status.
struct ProcessUsage {
    let cpuSeconds: Double
    let rssKiB: Int

    init(pid: pid_t) throws {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let afterName = stat.lastIndex(of: ")")
        else { throw BenchError("process \(pid) is gone") }
        // After the name: state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else {
            throw BenchError("cannot read /proc/\(pid)/stat")
        }
        cpuSeconds = (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
        rssKiB = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
            .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
    }
}
