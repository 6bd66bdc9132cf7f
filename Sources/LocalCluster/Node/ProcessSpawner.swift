import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How a process ended.
struct ExitStatus: Sendable, Equatable {
    /// The exit code, when it exited.
    var code: Int32?
    /// The signal that killed it, when one did.
    var signal: Int32?

    init(code: Int32? = nil, signal: Int32? = nil) {
        self.code = code
        self.signal = signal
    }

    /// Decodes a `waitpid` status (WIFEXITED / WTERMSIG, which Swift does not import).
    init(waitStatus status: Int32) {
        if status & 0x7F == 0 {
            self.init(code: (status >> 8) & 0xFF)
        } else {
            self.init(signal: status & 0x7F)
        }
    }

    /// The exit code Kubernetes reports: the code itself, or 128 + the signal.
    var reportedCode: Int { code.map(Int.init) ?? 128 + Int(signal ?? 0) }
    var succeeded: Bool { code == 0 }
}

/// What to start: an absolute executable, its argv, its environment and where its output goes.
struct SpawnRequest: Sendable {
    var executable: String
    /// The whole argv, argv[0] included.
    var arguments: [String]
    var environment: [(name: String, value: String)]
    var workingDirectory: String?
    /// Receives stdout and stderr; nil sends them to /dev/null.
    var outputPath: String?
    /// A descriptor to give the process as its stdin; nil gives it /dev/null.
    var standardInput: Int32? = nil
}

/// A started process that leads a session (and so a process group) of its own, as a container's
/// processes share a cgroup. Signals go to the whole group, and only while the leader has not
/// been reaped, so a recycled PID is never signalled. When the leader ends, whatever is left of
/// its group is killed, as the end of a container's main process ends the container.
final class GroupLeader: Sendable {
    let pid: pid_t
    /// The leader's start time in clock ticks since boot (`/proc/PID/stat` field 22), which
    /// tells this process apart from a later one with the same PID.
    let startTime: UInt64
    private let exited = Mutex(false)

    fileprivate init(pid: pid_t) {
        self.pid = pid
        startTime = ProcStat.read(pid)?.startTime ?? 0
    }

    /// Sends `signal` to every process of the group; false once the leader has ended.
    @discardableResult
    func signalGroup(_ signal: Int32) -> Bool {
        exited.withLock { exited in
            guard !exited else { return false }
            kill(-pid, signal)
            return true
        }
    }

    var hasExited: Bool { exited.withLock { $0 } }

    /// Called by the watcher once the leader is a zombie: its PID cannot be reused until it is
    /// reaped, so the group it leads can still be addressed safely.
    fileprivate func leaderEnded() {
        exited.withLock { exited in
            kill(-pid, SIGKILL)
            exited = true
        }
    }
}

enum SpawnError: Error, CustomStringConvertible, Equatable {
    case failed(String)
    var description: String { if case .failed(let message) = self { return message } else { return "" } }
}

/// Starts processes with `posix_spawn`: a new session, default signal dispositions and an empty
/// signal mask (the node itself ignores SIGTERM and SIGPIPE, and a container must not inherit
/// that), no inherited file descriptors beyond stdin, stdout and stderr.
///
/// Each process gets a watcher thread of its own that blocks in `waitid`, never a thread of
/// Swift's cooperative pool.
enum ProcessSpawner {
    /// POSIX_SPAWN_SETSID, a GNU extension that Swift's Glibc module does not export.
    private static let setSessionFlag: Int32 = 0x80

    static func spawn(_ request: SpawnRequest, onExit: @escaping @Sendable (ExitStatus) -> Void) throws(SpawnError) -> GroupLeader {
        var output: Int32 = -1
        if let path = request.outputPath {
            output = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard output >= 0 else { throw .failed("cannot open \(path): \(String(cString: strerror(errno)))") }
        }
        defer { if output >= 0 { close(output) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let input = request.standardInput {
            posix_spawn_file_actions_adddup2(&actions, input, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if output >= 0 {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        GNUSpawnActions.closeFrom(3, &actions)
        if let directory = request.workingDirectory { GNUSpawnActions.changeDirectory(directory, &actions) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        var noSignal = sigset_t()
        sigemptyset(&noSignal)
        posix_spawnattr_setsigmask(&attributes, &noSignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | setSessionFlag))

        let argv = CStringArray(request.arguments)
        let envp = CStringArray(request.environment.map { "\($0.name)=\($0.value)" })
        defer {
            argv.free()
            envp.free()
        }
        var spawned: pid_t = 0
        let result = posix_spawn(&spawned, request.executable, &actions, &attributes, argv.pointers, envp.pointers)
        guard result == 0 else {
            throw .failed("cannot start \(request.executable): \(String(cString: strerror(result)))")
        }
        let pid = spawned
        let leader = GroupLeader(pid: pid)
        let watcher = Thread {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
            leader.leaderEnded()
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            onExit(ExitStatus(waitStatus: status))
        }
        watcher.name = "tenops-node-wait-\(pid)"
        watcher.stackSize = 256 << 10
        watcher.start()
        return leader
    }
}

/// A NULL-terminated array of C strings for argv and envp.
private struct CStringArray {
    var pointers: [UnsafeMutablePointer<CChar>?]

    init(_ strings: [String]) {
        pointers = strings.map { strdup($0) } + [nil]
    }

    func free() { for pointer in pointers { Glibc.free(pointer) } }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34) and `..._addchdir_np` (2.29),
/// looked up at run time: Swift's Glibc module is not built with `_GNU_SOURCE`.
private enum GNUSpawnActions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static func closeFrom(_ lowest: Int32, _ actions: inout posix_spawn_file_actions_t) {
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, lowest)
            return
        }
        // An older glibc: close what is open now (descriptors opened meanwhile are O_CLOEXEC in
        // Foundation, NIO and curl).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for fd in open where fd >= lowest { posix_spawn_file_actions_addclose(&actions, fd) }
    }

    static func changeDirectory(_ path: String, _ actions: inout posix_spawn_file_actions_t) {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return }
        _ = unsafeBitCast(symbol, to: ChangeDirectory.self)(&actions, path)
    }
}

/// The fields of `/proc/PID/stat` the node needs.
struct ProcStat: Equatable {
    /// R, S, D, Z, ...
    var state: Character
    var session: Int32
    var startTime: UInt64

    /// Still there, and not an unreaped zombie.
    var isRunning: Bool { state != "Z" && state != "X" }

    static func read(_ pid: pid_t) -> ProcStat? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return parse(text)
    }

    /// Fields after the command name (which may hold spaces and parentheses): state is field 3,
    /// session field 6, starttime field 22.
    static func parse(_ text: String) -> ProcStat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let session = Int32(fields[3]), let start = UInt64(fields[19]) else {
            return nil
        }
        return ProcStat(state: state, session: session, startTime: start)
    }
}
