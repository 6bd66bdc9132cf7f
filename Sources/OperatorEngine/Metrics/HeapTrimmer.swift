#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOPosix

/// Gives the heap pages malloc holds free back to the kernel, now and then.
///
/// glibc keeps freed memory in its arenas, resident, for the next allocation. After a burst
/// (the first LIST of a thousand pairs, a relist, a wave of reconciles) that is tens of
/// megabytes an operator at rest never uses again: 14 MB at 1,000 pairs. `malloc_trim(0)`
/// returns every whole free page, as Go's scavenger does for its heap. It walks the arenas
/// under their locks, 7 to 16 ms at 1,000 pairs (a 150 MB heap), so it runs once a minute, on
/// NIO's thread pool for blocking work rather than on a thread of the cooperative pool.
public enum HeapTrimmer {
    /// Trims once; true when pages went back to the kernel.
    @discardableResult
    public static func trim() -> Bool {
        guard let mallocTrim else { return false }
        return mallocTrim(0) == 1
    }

    /// Caps malloc's arenas at `count` (glibc's `M_ARENA_MAX`): a thread that first allocates
    /// later (one of NIO's pool for blocking work, say) then shares an arena instead of starting
    /// one, which would step the RSS up at that moment. glibc fixes its limit the first time a
    /// process has more than 8 arenas, so this must come early; it suits a process with little
    /// contention on the heap, such as the console. False when the C library has no `mallopt`.
    @discardableResult
    public static func limitArenas(to count: Int32) -> Bool {
        guard let mallopt else { return false }
        return mallopt(-8, count) == 1  // M_ARENA_MAX
    }

    /// Gives every allocation of `bytes` or more pages of its own (glibc's `M_MMAP_THRESHOLD`),
    /// returned to the kernel as soon as it is freed. Set explicitly, the threshold stays put:
    /// by default glibc raises it to the size of each large block freed, after which such blocks
    /// come from the heap, and a heap top that holds one block or not at trim time makes the RSS
    /// step. That suits a process that keeps making and dropping large blocks, such as the
    /// console (a batch of log lines twenty times a second). False when the C library has no
    /// `mallopt`.
    @discardableResult
    public static func fixMmapThreshold(at bytes: Int32) -> Bool {
        guard let mallopt else { return false }
        return mallopt(-3, bytes) == 1  // M_MMAP_THRESHOLD
    }

    /// Lets malloc give the top of the heap back to the kernel once more than `bytes` of it are
    /// free (glibc's `M_TRIM_THRESHOLD`, 128 KiB by default; glibc looks when a free leaves a
    /// large free block, and keeps its `M_TOP_PAD`). False when the C library has no `mallopt`.
    @discardableResult
    public static func fixTrimThreshold(at bytes: Int32) -> Bool {
        guard let mallopt else { return false }
        return mallopt(-1, bytes) == 1  // M_TRIM_THRESHOLD
    }

    private static let mallopt = cFunction("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self)

    /// glibc's `malloc_trim`, looked up at run time: `<malloc.h>` is not part of the Glibc
    /// module, and a C library without it (musl) simply never trims.
    private static let mallocTrim = cFunction("malloc_trim", as: (@convention(c) (Int) -> Int32).self)

    /// A function of the C library by name, nil when it has none.
    private static func cFunction<Function>(_ name: String, as type: Function.Type) -> Function? {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: type)
        #else
        return nil
        #endif
    }

    /// The process's resident memory in bytes, from /proc/self/statm; nil where there is none.
    public static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        return ResidentMemory.bytes(statm: statm, pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// Trims every `interval` until the calling task is cancelled, when `policy` says so, logging
    /// each trim's cost at debug level.
    public static func run(every interval: Duration = .seconds(60), policy: TrimPolicy = .everyInterval, logger: Logger) async {
        let clock = ContinuousClock()
        var residentAfterLastTrim = residentBytes()
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let start = clock.now
            let baseline = residentAfterLastTrim
            let trimmed: (released: Bool, resident: Int?)?
            do {
                trimmed = try await NIOThreadPool.singleton.runIfActive {
                    guard policy.shouldTrim(resident: residentBytes(), residentAfterLastTrim: baseline) else { return nil }
                    return (trim(), residentBytes())
                }
            } catch { return }
            guard let outcome = trimmed else { continue }
            residentAfterLastTrim = outcome.resident
            logger.debug("heap trimmed", metadata: ["released": "\(outcome.released)", "took": "\(clock.now - start)"])
        }
    }
}

/// When the periodic trim gives the heap's free pages back.
///
/// Every trim also takes the pages of the small blocks a steady process frees and makes again
/// (the console's log lines, a watch's buffers): the next allocations fault them in again, one
/// page at a time, so the RSS saws up and down with each trim without any growth. A process
/// that wants a flat RSS at rest trims only after it grew, that is after a burst such as a first
/// LIST or a relist, whose freed megabytes are what a trim is for.
public enum TrimPolicy: Sendable, Equatable {
    /// Trim at every interval (`tenops operator`).
    case everyInterval
    /// Trim only once the RSS is `bytes` or more above what it was after the last trim (or when
    /// the trimmer started).
    case afterGrowth(bytes: Int)

    /// Whether to trim now, with the RSS now and after the last trim; an unknown RSS trims.
    public func shouldTrim(resident: Int?, residentAfterLastTrim: Int?) -> Bool {
        switch self {
        case .everyInterval:
            return true
        case .afterGrowth(let bytes):
            guard let resident, let residentAfterLastTrim else { return true }
            return resident - residentAfterLastTrim >= bytes
        }
    }
}

/// Reads /proc/PID/statm: its second field is the resident set in pages.
enum ResidentMemory {
    static func bytes(statm: String, pageSize: Int) -> Int? {
        let fields = statm.split(whereSeparator: \.isWhitespace)
        guard fields.count > 1, let pages = Int(fields[1]), pages >= 0 else { return nil }
        return pages * pageSize
    }
}
