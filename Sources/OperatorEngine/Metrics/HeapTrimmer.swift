#if canImport(Glibc)
import Glibc
#endif
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
    /// Read into the stack, not the heap: a block made and freed for it once a minute touched
    /// heap pages of its own.
    public static func residentBytes() -> Int? {
        #if canImport(Glibc)
        let file = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return nil }
        defer { close(file) }
        return withUnsafeTemporaryAllocation(byteCount: 256, alignment: 1) { buffer in
            let count = read(file, buffer.baseAddress, buffer.count)
            guard count > 0 else { return nil }
            return ResidentMemory.bytes(statm: UnsafeRawBufferPointer(rebasing: buffer[..<count]), pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
        }
        #else
        return nil
        #endif
    }

    /// Trims every `interval` until the calling task is cancelled, when `policy` says so, logging
    /// each trim's cost at debug level.
    public static func run(every interval: Duration = .seconds(60), policy: TrimPolicy = .everyInterval, logger: Logger) async {
        let clock = ContinuousClock()
        var baseline: Int?
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let start = clock.now
            let look: TrimLook
            do {
                look = try await NIOThreadPool.singleton.runIfActive { [baseline] in
                    let resident = residentBytes()
                    guard policy.shouldTrim(resident: resident, baseline: baseline) else { return TrimLook(released: nil, resident: resident) }
                    return TrimLook(released: trim(), resident: residentBytes())
                }
            } catch { return }
            if baseline == nil || look.released != nil { baseline = look.resident }
            if let released = look.released {
                logger.debug("heap trimmed", metadata: ["released": "\(released)", "took": "\(clock.now - start)"])
            }
        }
    }

    /// One interval's look: whether a trim gave pages back (nil: no trim), and the RSS after it.
    private struct TrimLook: Sendable {
        let released: Bool?
        let resident: Int?
    }
}

/// When the periodic trim gives the heap's free pages back.
///
/// A trim takes every whole free page, also those of free chunks that malloc hands out again
/// later: the allocations that land there fault them back in, a page at a time, for minutes
/// (the console's RSS rose by 20 to 32 KiB over a watch's reconnects after one trim of 56 KiB at
/// its first minute). So a process that means to stay flat trims only after it grew, once
/// running: after a burst such as a relist of many objects, whose freed megabytes are what a
/// trim is for.
public enum TrimPolicy: Sendable, Equatable {
    /// Trim at every interval (`tenops operator`).
    case everyInterval
    /// Take the RSS at the first interval as the baseline, then trim only once the RSS is
    /// `bytes` or more above the baseline; a trim sets the baseline again.
    case afterGrowth(bytes: Int)

    /// Whether to trim now, with the RSS now and the baseline (nil at the first interval). An
    /// RSS that cannot be read trims, as `everyInterval` does.
    public func shouldTrim(resident: Int?, baseline: Int?) -> Bool {
        switch self {
        case .everyInterval:
            return true
        case .afterGrowth(let bytes):
            guard let resident else { return true }
            guard let baseline else { return false }
            return resident - baseline >= bytes
        }
    }
}

/// Reads /proc/PID/statm: its second field is the resident set in pages.
enum ResidentMemory {
    /// Walks the bytes without making anything on the heap; nil unless the second field is a
    /// number of pages whose size in bytes fits an Int.
    static func bytes(statm: some Sequence<UInt8>, pageSize: Int) -> Int? {
        var field = 0
        var inField = false
        var pages = 0
        var digits = 0
        for byte in statm {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                if inField { field += 1 }
                inField = false
                if field > 1 { break }
                continue
            }
            inField = true
            guard field == 1 else { continue }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflowed) = pages.multipliedReportingOverflow(by: 10)
            let (sum, overflowedAgain) = shifted.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflowed, !overflowedAgain else { return nil }
            pages = sum
            digits += 1
        }
        guard digits > 0 else { return nil }
        let (bytes, overflowed) = pages.multipliedReportingOverflow(by: pageSize)
        return overflowed ? nil : bytes
    }
}
