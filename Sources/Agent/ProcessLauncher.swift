import Foundation
import Subprocess
import Synchronization

#if canImport(System)
import System
#else
import SystemPackage
#endif

#if canImport(Glibc)
import Glibc
#endif

/// What a finished tool run produced.
struct ToolResult: Sendable {
    var status: TerminationStatus
    var stdout: String
    var stderr: String
    var succeeded: Bool { status.isSuccess }
}

/// Runs the engine's tools and its server.
///
/// Children that must run as the server user (initdb, postgres, pg_basebackup) are started
/// through our own `agent exec-child` wrapper, which switches user after a clean exec and asks
/// for SIGKILL when the agent dies. They are never started with swift-subprocess's own
/// user/group options: those run setgroups(2) through glibc in a child made by a raw clone3,
/// where glibc still believes the parent's other threads exist and waits for them forever.
/// psql runs as the agent itself and is mapped onto the server's superuser by peer
/// authentication (pg_ident.conf).
///
/// The wrapper's parent-death signal follows the *thread* that forked it, not the process.
/// swift-subprocess forks every child on one dedicated worker thread that lives until the
/// process exits (its `runOnBackgroundThread`), never on a libdispatch worker, which would exit
/// after a few idle seconds and take the postmaster with it. (Checked with strace: the
/// clone3 that creates the postmaster comes from that worker thread.)
struct ProcessLauncher: Sendable {
    let serverUser: ServerUser
    let execChild: [String]?

    /// A minimal environment for the engine's tools: no inherited secrets, a C.UTF-8 locale.
    static func toolEnvironment(_ extra: [String: String] = [:]) -> Subprocess.Environment {
        var values: [Subprocess.Environment.Key: String] = [
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": "/tmp",
            "PGAPPNAME": "tenops-agent",
            "PSQLRC": "/dev/null",
        ]
        for (key, value) in extra { values[Subprocess.Environment.Key(stringLiteral: key)] = value }
        return .custom(values)
    }

    /// The executable and arguments that run `path`: through the wrapper (as the server user,
    /// dying with the agent) when `asServerUser`, else directly.
    func command(_ path: String, _ arguments: [String], asServerUser: Bool) throws -> (executable: String, arguments: [String], wrapped: Bool) {
        guard asServerUser else { return (path, arguments, false) }
        guard let execChild, let wrapper = execChild.first else {
            if serverUser.needsSwitch {
                throw AgentInternalError("running \(path) as \(serverUser.name) needs the exec-child wrapper (the tenops binary), which is not configured")
            }
            return (path, arguments, false)
        }
        let wrapperArguments = Array(execChild.dropFirst()) + [
            "--uid", String(serverUser.uid), "--gid", String(serverUser.gid), "--parent-pid", String(getpid()), "--",
            path,
        ] + arguments
        return (wrapper, wrapperArguments, true)
    }

    /// Runs a short-lived tool and collects its output. `stdin` reaches the tool through an
    /// unlinked temporary file rather than a pipe: a tool that exits without reading its input
    /// (psql that cannot connect) must not turn into a failed write.
    func run(
        _ path: String, _ arguments: [String], asServerUser: Bool, stdin: String? = nil,
        environment: [String: String] = [:], outputLimit: Int = 4 << 20
    ) async throws -> ToolResult {
        let env = Self.toolEnvironment(environment)
        let (executable, args, _) = try command(path, arguments, asServerUser: asServerUser)
        let input: FileDescriptor
        if let stdin {
            input = try Self.unlinkedFile(containing: stdin)
        } else {
            input = try FileDescriptor.open(FilePath("/dev/null"), .readOnly, options: [.closeOnExec])
        }
        let result = try await Subprocess.run(
            .path(FilePath(executable)), arguments: Arguments(args), environment: env,
            workingDirectory: FilePath("/"), input: .fileDescriptor(input, closeAfterSpawningProcess: true),
            output: .string(limit: outputLimit), error: .string(limit: 1 << 20))
        return ToolResult(status: result.terminationStatus, stdout: result.standardOutput, stderr: result.standardError)
    }

    /// A read-only descriptor of a file that holds `text` and has no name any more.
    static func unlinkedFile(containing text: String) throws -> FileDescriptor {
        let path = "/tmp/tenops-stdin-\(UUID().uuidString)"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentInternalError("cannot create \(path): \(String(cString: strerror(errno)))") }
        let writer = FileDescriptor(rawValue: fd)
        defer {
            unlink(path)
            try? writer.close()
        }
        _ = try writer.writeAll(Array(text.utf8))
        return try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
    }

    /// Starts the postmaster as the server user, with stdout and stderr
    /// appended to `logPath`. Returns once it is spawned; `onSpawn` runs before that with its
    /// pid, `onExit` when it terminates.
    func startServer(
        _ path: String, _ arguments: [String], logPath: String,
        onSpawn: @escaping @Sendable (pid_t) -> Void,
        onExit: @escaping @Sendable (pid_t, TerminationStatus) async -> Void
    ) async throws -> pid_t {
        let (executable, args, _) = try command(path, arguments, asServerUser: true)
        let out = try FileDescriptor.open(
            FilePath(logPath), .writeOnly, options: [.append, .create, .closeOnExec],
            permissions: [.ownerReadWrite, .groupRead])
        let err: FileDescriptor
        do { err = try out.duplicate() } catch { try? out.close(); throw error }
        _ = fcntl(err.rawValue, F_SETFD, FD_CLOEXEC)
        let env = Self.toolEnvironment()
        let started = AsyncStream<Result<pid_t, any Error>>.makeStream()
        Task {
            var pid: pid_t = 0
            do {
                let result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(args), environment: env,
                    workingDirectory: FilePath("/"), input: .none,
                    output: .fileDescriptor(out, closeAfterSpawningProcess: true),
                    error: .fileDescriptor(err, closeAfterSpawningProcess: true)
                ) { execution in
                    pid = execution.processIdentifier.value
                    onSpawn(pid)
                    started.continuation.yield(.success(pid))
                    started.continuation.finish()
                }
                await onExit(pid, result.terminationStatus)
            } catch {
                started.continuation.yield(.failure(error))
                started.continuation.finish()
            }
        }
        for await outcome in started.stream { return try outcome.get() }
        throw AgentInternalError("the server process did not start")
    }

    /// Runs a tool as the server user (pg_basebackup), reading its
    /// stderr as it comes. `onStderr` sees every chunk.
    func runStreamingStderr(
        _ path: String, _ arguments: [String], environment: [String: String] = [:],
        onStderr: @escaping @Sendable (String) -> Void
    ) async throws -> ToolResult {
        let (executable, args, _) = try command(path, arguments, asServerUser: true)
        let env = Self.toolEnvironment(environment)
        let task = Task { () throws -> ToolResult in
            let result = try await Subprocess.run(
                .path(FilePath(executable)), arguments: Arguments(args), environment: env,
                workingDirectory: FilePath("/"), input: .none,
                output: .string(limit: 1 << 20), error: .sequence
            ) { execution in
                var collected = ""
                for try await chunk in execution.standardError {
                    let text = chunk.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
                    onStderr(text)
                    collected += text
                    if collected.utf8.count > 256 << 10 { collected = String(collected.suffix(128 << 10)) }
                }
                return collected
            }
            return ToolResult(status: result.terminationStatus, stdout: result.standardOutput, stderr: result.closureResult)
        }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

struct AgentInternalError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The hidden `tenops agent exec-child` subcommand: the tiny wrapper between the agent and a
/// child that must not outlive it. It drops to the server user, asks the kernel for SIGKILL when
/// its parent dies, checks that the parent is still the agent (it may have died before the
/// prctl), then replaces itself with the real program.
public enum ExecChild {
    /// Parses `--uid U --gid G --parent-pid P -- program arguments...` and execs; returns an
    /// exit code only on failure. For a host binary without ArgumentParser (the benchmarks).
    public static func main(arguments: [String]) -> Int32 {
        var uid: UInt32?
        var gid: UInt32?
        var parent: Int32?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                guard let uid, let gid, let parent else { break }
                return exec(uid: uid, gid: gid, parentPID: parent, command: Array(arguments[(index + 1)...]))
            }
            guard index + 1 < arguments.count else { break }
            let value = arguments[index + 1]
            switch argument {
            case "--uid": uid = UInt32(value)
            case "--gid": gid = UInt32(value)
            case "--parent-pid": parent = Int32(value)
            default: break
            }
            index += 2
        }
        say("usage: exec-child --uid U --gid G --parent-pid P -- /path/to/program [arguments...]")
        return 64
    }

    /// Never returns on success; returns an exit code on failure.
    public static func exec(uid: UInt32, gid: UInt32, parentPID: Int32, command: [String]) -> Int32 {
        guard let program = command.first, program.hasPrefix("/") else {
            say("exec-child: the command must start with an absolute path")
            return 64
        }
        if getuid() != uid || getgid() != gid {
            // The order matters: supplementary groups and the group while still root, then the user.
            if getuid() == 0 && setgroups(0, nil) != 0 { return fail("setgroups") }
            if setgid(gid) != 0 { return fail("setgid(\(gid))") }
            if setuid(uid) != 0 { return fail("setuid(\(uid))") }
        }
        // After the credentials change: changing credentials clears the parent-death signal.
        guard let prctl = prctlFunction() else { return fail("dlsym(prctl)") }
        if prctl(1 /* PR_SET_PDEATHSIG */, UInt(SIGKILL), 0, 0, 0) != 0 { return fail("prctl(PR_SET_PDEATHSIG)") }
        if getppid() != parentPID {
            say("exec-child: the agent (pid \(parentPID)) is gone; not starting \(program)")
            return 70
        }
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD] { Glibc.signal(signal, SIG_DFL) }
        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) }
        argv.append(nil)
        execv(program, &argv)
        return fail("execv(\(program))")
    }

    private static func fail(_ what: String) -> Int32 {
        say("exec-child: \(what) failed: \(String(cString: strerror(errno)))")
        return 71
    }

    private static func say(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// prctl(2) is variadic in C, so Swift does not import it; its four trailing arguments are
    /// unsigned longs passed in registers, which a fixed-arity pointer type calls correctly on
    /// the System V x86-64 and AArch64 ABIs.
    typealias PrctlFunction = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32

    static func prctlFunction() -> PrctlFunction? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else { return nil }
        return unsafeBitCast(symbol, to: PrctlFunction.self)
    }
}
