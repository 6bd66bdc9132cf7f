import AgentTestSupport
import Foundation
import KubeAPI
import LocalCluster
import Logging
import OperatorEngine
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A tmux server of its own (its own socket), with one session running one command. The screen
/// is read with `capture-pane` and typed into with `send-keys`, as a person would.
final class TmuxSession: Sendable {
    static let tmux = "/usr/bin/tmux"
    let socket: String
    let width: Int
    let height: Int

    /// Where the shell writes the program's exit status.
    let statusFile: String

    init(width: Int = 200, height: Int = 60) {
        socket = "tenops-e2e-\(UUID().uuidString.prefix(8).lowercased())"
        statusFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(socket).status").path
        self.width = width
        self.height = height
    }

    /// Starts `argv` in a UTF-8 locale under a shell that writes its exit status to
    /// `statusFile` when it ends (tmux 3.3's own `pane_dead_status` is not always recorded, and
    /// a line echoed right after a program leaves the alternate screen is sometimes lost), and
    /// keeps the pane after.
    func start(_ argv: [String], environment: [String: String] = [:]) async throws {
        let variables = ["LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"].merging(environment) { _, own in own }
        let assignments = variables.keys.sorted().map { "\($0)=\(Self.quote(variables[$0]!))" }
        let command = "env " + assignments.joined(separator: " ") + " " + argv.map(Self.quote).joined(separator: " ")
            + "; echo $? > " + Self.quote(statusFile)
        let result = try await tmux(["-f", "/dev/null", "set-option", "-g", "remain-on-exit", "on", ";",
                                     "new-session", "-d", "-x", "\(width)", "-y", "\(height)", command])
        guard result.status == 0 else { throw HarnessError("tmux new-session failed: \(result.out)") }
    }

    /// The program's pid: the only child of the pane's shell.
    func programPID() async throws -> Int32? {
        guard let shell = Int32(try await display("#{pane_pid}")) else { return nil }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let children = (try? String(contentsOfFile: "/proc/\(shell)/task/\(shell)/children", encoding: .utf8)) ?? ""
            if let pid = children.split(separator: " ").compactMap({ Int32($0) }).first { return pid }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// The program's exit status as its shell wrote it (128 + N: killed by signal N), once
    /// it has ended; nil after `timeout`.
    func exitStatus(timeout: Duration = .seconds(30)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: statusFile, encoding: .utf8)) ?? ""
            if text.hasSuffix("\n"), let status = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) { return status }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    @discardableResult
    func tmux(_ arguments: [String]) async throws -> Spawn.Output {
        try await Spawn.run([Self.tmux, "-L", socket] + arguments)
    }

    func capture() async throws -> String { try await tmux(["capture-pane", "-p"]).out }

    /// `send-keys` with tmux key names (`Enter`, `Escape`, `q`).
    func send(_ keys: String...) async throws { try await tmux(["send-keys"] + keys) }

    /// Types `text` literally.
    func type(_ text: String) async throws { try await tmux(["send-keys", "-l", text]) }

    func display(_ format: String) async throws -> String {
        try await tmux(["display-message", "-p", format]).out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Polls the screen every 50 ms until `condition` holds on it; returns that screen, or nil
    /// at the deadline (then `last` holds the last screen seen).
    func waitFor(_ what: String, timeout: Duration, _ condition: (String) -> Bool) async throws -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let screen = try await capture()
            if condition(screen) { return screen }
            if ContinuousClock.now >= deadline {
                Issue.record("timed out after \(timeout) waiting for \(what); the screen:\n\(screen)")
                return nil
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the server and removes its socket file.
    func killServer() async {
        let path = (try? await display("#{socket_path}")).flatMap { $0.isEmpty ? nil : $0 }
        _ = try? await tmux(["kill-server"])
        if let path { unlink(path) }
        unlink(statusFile)
    }

    static func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// Runs a command with nothing inherited but stdin (/dev/null), stdout and stderr (a file).
///
/// Not Foundation's Process: tmux's server outlives its client, and would inherit the descriptor
/// through which Process learns that the client exited, so the client would never be seen to.
enum Spawn {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }

    struct Output {
        var status: Int32
        /// stdout and stderr together.
        var out: String
    }

    static func run(_ argv: [String]) async throws -> Output {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-spawn-\(UUID().uuidString)").path
        defer { unlink(output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        guard let closeFrom else { throw HarnessError("this glibc has no posix_spawn_file_actions_addclosefrom_np") }
        _ = closeFrom(&actions, 3)
        // Default dispositions and an empty mask: a tmux server that inherited this process's
        // blocked SIGCHLD would never reap its panes' processes.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        sigdelset(&everySignal, SIGKILL)
        sigdelset(&everySignal, SIGSTOP)
        var noSignal = sigset_t()
        sigemptyset(&noSignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let arguments = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, arguments, environ)
        guard spawned == 0 else { throw HarnessError("cannot start \(argv[0]): error \(spawned)") }
        let child = pid
        let status: Int32 = await withCheckedContinuation { continuation in
            // waitpid blocks: on a thread of its own, never the cooperative pool.
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(child, &status, 0) < 0 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Output(status: exitStatus, out: text)
    }
}

/// What the screen says of a pair: its row in the table and the detail's role labels.
struct PairOnScreen: Equatable {
    var state: String
    var active: String
    var standby: String

    init(state: String, active: String, standby: String) {
        self.state = state
        self.active = active
        self.standby = standby
    }

    /// The table row of `name` (`›sample  default  Normal  sample-0  sample-1 ...`).
    init?(_ screen: String, name: String = "sample") {
        for line in screen.split(separator: "\n") {
            // The selection pointer (› or >) may stand before the name, joined or not.
            let words = line.split(whereSeparator: { $0 == " " }).map(String.init)
                .map { $0.hasPrefix("›") || $0.hasPrefix(">") ? String($0.dropFirst()) : $0 }.filter { !$0.isEmpty }
            guard words.count >= 5, words[0] == name, words[1] == "default" else { continue }
            state = words[2]
            active = words[3]
            standby = words[4]
            return
        }
        return nil
    }
}

/// Processes under `directory` (the pods' agents and PostgreSQL servers), by PID, so that a
/// test that failed half-way leaves nothing running.
func killProcesses(under directory: String) async {
    let found = try? await ChildProcess.run("/usr/bin/pgrep", ["-f", directory])
    let pids = (found?.out ?? "").split(separator: "\n").compactMap { Int32($0) }.filter { $0 != getpid() }
    for pid in pids { kill(pid, SIGKILL) }
}

/// The console end to end: `tenops local` in a tmux pane, driven by keys and read from the
/// screen. Run under `flock /tmp/tenops-e2e.lock` (real pods on loopback addresses).
@Suite("Console end to end under tmux", .serialized, .timeLimit(.minutes(5)))
struct ConsoleE2ETests {
    /// The binary, copied: a rebuild of .build/debug/tenops while the pods run it would make
    /// their next exec fail with ETXTBSY.
    static func privateBinary(in directory: String) throws -> String {
        let binary = "\(directory)/bin/tenops"
        try FileManager.default.createDirectory(atPath: "\(directory)/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try tenopsBinary(), toPath: binary)
        return binary
    }

    @Test("""
        tenops local in tmux: the pair reaches Normal with its roles marked; l streams the daemonlog; \
        a confirmed switchover shows its result; kill -9 of the active's postmaster shows the state change, \
        the roles swap and why within 2 s; a powered-off node shows its NotReady timer counting; q restores the terminal
        """)
    func localCluster() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-console-e2e-\(UUID().uuidString.prefix(8))").path
        let state = "\(directory)/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let binary = try Self.privateBinary(in: directory)
        let tmux = TmuxSession()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await tmux.start([binary, "local", "--dir", state, "--node-grace-period", "5"])
        let pid = try await tmux.programPID()
        do {
            try await scenario(tmux: tmux, state: state)
        } catch {
            Issue.record("the scenario stopped: \(error)")
        }
        await tmux.killServer()
        if let pid, kill(pid, 0) == 0 {
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + .seconds(20)
            while kill(pid, 0) == 0, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(100)) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
        await killProcesses(under: directory)
    }

    private func scenario(tmux: TmuxSession, state: String) async throws {
        // 1. The pair appears and reaches Normal; the table and the detail mark active and standby.
        guard let normal = try await tmux.waitFor("the pair Normal", timeout: .seconds(120), {
            PairOnScreen($0).map { $0.state == "Normal" && $0.active != "-" && $0.standby != "-" } ?? false
        }) else { return }
        let first = try #require(PairOnScreen(normal))
        #expect(Set([first.active, first.standby]) == ["sample-0", "sample-1"])
        #expect(normal.contains("\(first.active)  ACTIVE"), "the detail marks the active")
        #expect(normal.contains("\(first.standby)  STANDBY"), "the detail marks the standby")
        #expect(normal.contains("engine: embedded"))

        // 2. `l` streams the selected pod's daemonlog (PostgreSQL's own log lines).
        try await tmux.send("l")
        let streamed = try await tmux.waitFor("daemonlog lines in the log pane", timeout: .seconds(15)) { screen in
            screen.contains("LOG:")
        }
        #expect(streamed != nil)
        try await tmux.send("q")
        _ = try await tmux.waitFor("the log pane closed", timeout: .seconds(5)) { !$0.contains("LOG:") }

        // 3. A switchover from the keyboard: the dialog says what will happen, Enter confirms, and
        //    the dialog then shows the result; the table shows the roles swapped.
        try await tmux.send("S")
        let asked = try await tmux.waitFor("the switchover dialog", timeout: .seconds(5)) { $0.contains("Enter confirms") }
        #expect(asked?.contains("from \(first.active) to \(first.standby)") == true)
        try await tmux.send("Enter")
        let switched = try await tmux.waitFor("the switchover's result", timeout: .seconds(90)) { screen in
            screen.contains("│ Succeeded") || screen.contains("│ Failed")
        }
        #expect(switched?.contains("│ Succeeded") == true, "the switchover succeeded")
        try await tmux.send("Escape")
        guard try await tmux.waitFor("Normal with the roles swapped", timeout: .seconds(30), {
            PairOnScreen($0) == PairOnScreen(state: "Normal", active: first.standby, standby: first.active)
        }) != nil else { return }

        // 4. kill -9 of the active's postmaster: within 2 s the screen shows the pair leave Normal,
        //    the roles swap back, and the events pane says why.
        let active = first.standby
        let postmaster = try await ChildProcess.run("/usr/bin/pgrep", ["-f", "postgres -D \(state)/nodes/.*/tt-persistent-\(active)/pgdata "])
        let pid = try #require(postmaster.out.split(separator: "\n").compactMap { Int32($0) }.first, "the postmaster of \(active)")
        let killed = ContinuousClock.now
        kill(pid, SIGKILL)
        var leftNormal = false
        var seen: String?
        while killed.duration(to: .now) < .seconds(2) {
            let screen = try await tmux.capture()
            if let row = PairOnScreen(screen), row.state != "Normal" { leftNormal = true }
            if let row = PairOnScreen(screen), row.active == first.active, leftNormal || screen.contains("was ActiveDown")
                || screen.contains("was ActiveTakeover"), screen.contains("Down") {
                seen = screen
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let reacted = killed.duration(to: .now)
        print("console e2e: kill -9 of \(active)'s postmaster to the screen showing the roles swapped: \(reacted)")
        #expect(leftNormal, "the table showed the pair leave Normal within 2 s")
        #expect(seen != nil, "within 2 s the roles swapped and the screen said why (\(reacted))")
        if let seen {
            let events = seen.split(separator: "\n").drop { !$0.contains("Events") }.prefix(6).joined(separator: "\n")
            #expect(events.contains("\(active)") && (events.contains("Down") || events.contains("FAILOVER")),
                    "the events pane names the failed active:\n\(events)")
        }
        _ = try await tmux.waitFor("Normal again after the failover", timeout: .seconds(60)) {
            PairOnScreen($0)?.state == "Normal"
        }

        // 5. Power off the node of pod 1 (`1` chooses it; P asks; the name is typed to confirm);
        //    the detail shows the NotReady timer counting towards deleteDbOnNotReadyNode.
        try await tmux.send("1")
        try await tmux.send("P")
        _ = try await tmux.waitFor("the power-off dialog", timeout: .seconds(5)) { $0.contains("Power off") }
        try await tmux.type("sample")
        try await tmux.send("Enter")
        let powered = try await tmux.waitFor("the power-off result", timeout: .seconds(10)) { $0.contains("│ Succeeded") }
        #expect(powered != nil)
        try await tmux.send("Escape")
        let pattern = /NotReady (\d+)s, deletes at 60s/
        guard let firstTimer = try await tmux.waitFor("the NotReady timer", timeout: .seconds(30), { $0.contains(pattern) }),
              let firstMatch = firstTimer.firstMatch(of: pattern), let firstSeconds = Int(firstMatch.1)
        else { return }
        let counted = try await tmux.waitFor("the NotReady timer counting", timeout: .seconds(5)) { screen in
            screen.firstMatch(of: pattern).flatMap { Int($0.1) }.map { $0 >= firstSeconds + 2 } ?? false
        }
        #expect(counted != nil, "the timer went on from \(firstSeconds)s")

        // 6. q quits (the table has the focus): curses gives the terminal back and everything stops.
        try await tmux.send("q")
        let exited = try await tmux.waitFor("tenops local to exit", timeout: .seconds(60)) { $0.contains("tenops local: stopping") }
        #expect(exited != nil)
        let status = try await tmux.exitStatus(timeout: .seconds(60))
        #expect(status == 0)
        do {
            let shown = try await tmux.display("#{alternate_on}")
            #expect(shown == "0", "curses left the alternate screen")
        }
        let last = try await tmux.capture()
        #expect(last.contains("tenops local: opening the console"), "the startup lines are on the restored screen")
        #expect(!last.contains("┌─"), "nothing of the console is left on the screen")
    }

    // MARK: Restoring the terminal without a cluster

    /// A kubeconfig whose server refuses connections: the console starts and says so.
    static func unreachableKubeconfig(in directory: String) throws -> String {
        let path = "\(directory)/kubeconfig"
        let text = """
            apiVersion: v1
            kind: Config
            clusters:
            - name: nowhere
              cluster:
                server: https://127.0.0.1:9
                insecure-skip-tls-verify: true
            users:
            - name: someone
              user:
                token: not-a-real-token
            contexts:
            - name: nowhere
              context:
                cluster: nowhere
                user: someone
                namespace: default
            current-context: nowhere

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("SIGTERM and SIGINT: the console says the API is unreachable, then quits cleanly and restores the terminal",
          arguments: [SIGTERM, SIGINT])
    func signals(signal: Int32) async throws {
        try await withConsole { tmux, pid in
            _ = try await tmux.waitFor("the header", timeout: .seconds(20)) { $0.contains("API unreachable") || $0.contains("API degraded") }
            do {
                let shown = try await tmux.display("#{alternate_on}")
                #expect(shown == "1")
            }
            kill(pid, signal)
            let status = try await tmux.exitStatus()
            #expect(status == 0, "a clean exit, not death by the signal")
            do {
                let shown = try await tmux.display("#{alternate_on}")
                #expect(shown == "0")
            }
        }
    }

    @Test("a crash (SIGSEGV, SIGABRT) gives the terminal back before the process dies", arguments: [SIGSEGV, SIGABRT])
    func crash(signal: Int32) async throws {
        try await withConsole { tmux, pid in
            _ = try await tmux.waitFor("the header", timeout: .seconds(20)) { $0.contains("tenops") && $0.contains("ctx: nowhere") }
            kill(pid, signal)
            let status = try await tmux.exitStatus()
            #expect(status == 128 + Int(signal), "it died of the signal")
            do {
                let shown = try await tmux.display("#{alternate_on}")
                #expect(shown == "0", "endwin ran before the process died")
            }
        }
    }

    @Test("q quits; the screen of the shell is back")
    func quitKey() async throws {
        try await withConsole { tmux, _ in
            _ = try await tmux.waitFor("the header", timeout: .seconds(20)) { $0.contains("ctx: nowhere") }
            try await tmux.send("q")
            let status = try await tmux.exitStatus()
            #expect(status == 0)
            do {
                let shown = try await tmux.display("#{alternate_on}")
                #expect(shown == "0")
            }
            let screen = try await tmux.capture()
            #expect(!screen.contains("ctx: nowhere"))
        }
    }

    @Test("tenops console against a real API server, its curl allocating through CurlMemory: lists a pair over HTTPS, streams its daemonlog with l, and quits")
    func consoleAgainstAPIServer() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-console-e2e-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try await LocalAPIServer.start(.init(stateDirectory: directory, logSource: BurstLogSource(count: 3_000)))
        let tmux = TmuxSession(width: 120, height: 40)
        do {
            let client = KubeClient(config: try ClusterConfig.load(kubeconfig: "\(directory)/kubeconfig"))
            try await ClusterSetup.install(client: client, sample: false, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            var pair = TimesTenClassic(name: "alpha", namespace: "default")
            pair.json["spec"] = ["ttspec": ["image": "tenops:latest"]]
            _ = try await client.create(pair)
            _ = try await client.create(BurstLogSource.pod(named: "alpha-0"))
            try await tmux.start([try tenopsBinary(), "console", "--kubeconfig", "\(directory)/kubeconfig", "--engine", "observe",
                                  "--log-file", "\(directory)/console.log", "--log-level", "debug", "--heap-trim-interval", "6"])
            let listed = try await tmux.waitFor("the pair, with the API healthy", timeout: .seconds(30)) {
                $0.contains("API ok") && $0.contains("alpha")
            }
            #expect(listed != nil)
            let pid = try #require(try await tmux.programPID())
            try await tmux.send("l")
            let streamed = try await tmux.waitFor("the daemonlog's last line", timeout: .seconds(30)) { $0.contains("line 2999") }
            #expect(streamed != nil)
            let consoleLog = "\(directory)/console.log"
            let unfaulted = try await LogFile.missing(["heap top faulted in"], in: consoleLog, within: .seconds(10))
            #expect(unfaulted.isEmpty, "no \"heap top faulted in\" in the console's log 10 s after the log streamed")
            // The trimmer's first look (6 s in) faults in the heap's top reserve: every page of the
            // last 512 KiB below the break is resident. (Without the fault, 32 of these 128 pages
            // were: malloc grows the heap by its 512 KiB pad at a time, untouched.)
            let top = try HeapTop.presentPages(pid: pid, bytes: 512 << 10)
            #expect(top.present == top.total, "after the first look: \(top.present) of \(top.total) pages of the heap's top resident")
            // Every informer's first watch is a short one (15 to 30 s): it ends and resumes while
            // the console warms up, and the resumed watch still delivers.
            let resources = [TimesTenClassic.resourceType, Pod.resourceType, KubeAPI.Node.resourceType, PersistentVolumeClaim.resourceType,
                             CoreEvent.resourceType, Lease.resourceType].map { "\($0) watch 1 ended by the server" }
            let unresumed = try await LogFile.missing(resources, in: consoleLog, within: .seconds(40))
            #expect(unresumed.isEmpty, "not in the console's log 40 s after the log streamed: \(unresumed)")
            var later = TimesTenClassic(name: "bravo", namespace: "default")
            later.json["spec"] = ["ttspec": ["image": "tenops:latest"]]
            _ = try await client.create(later)
            #expect(try await tmux.waitFor("a pair made after the watches resumed", timeout: .seconds(10)) { $0.contains("bravo") } != nil)
            try await tmux.send("q")
            try await tmux.send("q")
            #expect(try await tmux.exitStatus() == 0)
            let log = try String(contentsOfFile: consoleLog, encoding: .utf8)
            #expect(log.contains("curl allocates through CurlMemory: true"))
        } catch {
            Issue.record("\(error)")
        }
        await tmux.killServer()
        await server.stop()
        await killProcesses(under: directory)
    }

    private func withConsole(_ body: (TmuxSession, Int32) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-console-e2e-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let kubeconfig = try Self.unreachableKubeconfig(in: directory)
        let tmux = TmuxSession(width: 120, height: 40)
        try await tmux.start([try tenopsBinary(), "console", "--kubeconfig", kubeconfig, "--engine", "observe", "--log-file", "\(directory)/console.log"],
                             environment: ["SWIFT_BACKTRACE": "enable=no"])
        let pid = try await tmux.programPID()
        // A program that ends within ~100 ms of its session's creation can lose the shell's
        // next line to tmux setting the new pane up; a person never quits that fast.
        try await Task.sleep(for: .milliseconds(500))
        do {
            let found = try #require(pid)
            try await body(tmux, found)
        } catch {
            Issue.record("\(error)")
        }

        await tmux.killServer()
        if let pid, kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

}

/// The pages at the top of another process's brk heap, read from /proc/PID/maps and
/// /proc/PID/pagemap (bit 63 of each entry: present in RAM; readable without privileges).
/// A log file that a process under test writes.
enum LogFile {
    /// Which of `lines` the file at `path` still lacks once all are there or `timeout` passed
    /// (read every 100 ms).
    static func missing(_ lines: [String], in path: String, within timeout: Duration) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            let missing = lines.filter { !text.contains($0) }
            if missing.isEmpty || ContinuousClock.now >= deadline { return missing }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

enum HeapTop {
    static func presentPages(pid: Int32, bytes: Int) throws -> (present: Int, total: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let ends = maps.split(separator: "\n").filter { $0.hasSuffix("[heap]") }.compactMap { line in
            line.split(separator: " ").first?.split(separator: "-").last.flatMap { Int($0, radix: 16) }
        }
        let end = try #require(ends.max(), "no [heap] in /proc/\(pid)/maps")
        let count = bytes / page
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(pid)/pagemap"))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64((end / page - count) * 8))
        let entries = try #require(try handle.read(upToCount: count * 8))
        try #require(entries.count == count * 8, "pagemap gave \(entries.count) bytes of \(count * 8)")
        let present = stride(from: 0, to: entries.count, by: 8).filter { offset in
            entries[entries.startIndex + offset + 7] & 0x80 != 0
        }.count
        return (present, count)
    }
}
