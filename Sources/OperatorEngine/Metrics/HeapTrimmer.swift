#if canImport(Glibc)
import CMalloc
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
    /// Trims once, keeping `pad` bytes at the heap's top; true when pages went back to the kernel.
    @discardableResult
    public static func trim(keeping pad: Int = 0) -> Bool {
        #if canImport(Glibc)
        return malloc_trim(max(0, pad)) == 1
        #else
        return false
        #endif
    }

    /// Keeps `bytes` free at the top of the heap whenever malloc grows it or gives its top back
    /// (glibc's `M_TOP_PAD`, 128 KiB by default), so that the reserve `prefaultTop` faults in
    /// stays with the heap.
    @discardableResult
    public static func fixTopPad(at bytes: Int32) -> Bool {
        setMallocOption(M_TOP_PAD, bytes)
    }

    /// Faults in the pages of the calling thread's heap top, `bytes` of them, as real-time Linux
    /// programs do at start: takes twice `bytes` in 16 KiB blocks (under the console's mmap
    /// threshold, so from the heap), writes a byte in each of their pages and frees them, last
    /// first, so that they join the top again. A free then gives back what is above the top
    /// pad (`fixTopPad`), and the top keeps `bytes`, resident. The heap's settling after its
    /// first minute (a block of a size with no free chunk left, which goes on the top) then uses
    /// pages already counted in the RSS instead of faulting in a page, as the console's did a
    /// few times in ten minutes. Returns the bytes written.
    @discardableResult
    public static func prefaultTop(bytes: Int) -> Int {
        #if canImport(Glibc)
        let block = 16 << 10
        let count = max(1, (2 * bytes + block - 1) / block)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        return withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer?.self, capacity: count) { blocks in
            var written = 0
            for index in 0..<count {
                blocks[index] = malloc(block)
                if let taken = blocks[index] {
                    tenops_touch_pages(taken, block, page)
                    written += block
                }
            }
            for index in (0..<count).reversed() { free(blocks[index]) }
            return written
        }
        #else
        return 0
        #endif
    }

    /// Caps malloc's arenas at `count` (glibc's `M_ARENA_MAX`): a thread that first allocates
    /// later (one of NIO's pool for blocking work, say) then shares an arena instead of starting
    /// one, which would step the RSS up at that moment. glibc fixes its limit the first time a
    /// process has more than 8 arenas, so this must come early; it suits a process with little
    /// contention on the heap, such as the console.
    @discardableResult
    public static func limitArenas(to count: Int32) -> Bool {
        setMallocOption(M_ARENA_MAX, count)
    }

    /// Gives every allocation of `bytes` or more pages of its own (glibc's `M_MMAP_THRESHOLD`),
    /// returned to the kernel as soon as it is freed. Set explicitly, the threshold stays put:
    /// by default glibc raises it to the size of each large block freed, after which such blocks
    /// come from the heap, and a heap top that holds one block or not at trim time makes the RSS
    /// step. That suits a process that keeps making and dropping large blocks, such as the
    /// console (a batch of log lines twenty times a second).
    @discardableResult
    public static func fixMmapThreshold(at bytes: Int32) -> Bool {
        setMallocOption(M_MMAP_THRESHOLD, bytes)
    }

    /// Lets malloc give the top of the heap back to the kernel once more than `bytes` of it are
    /// free (glibc's `M_TRIM_THRESHOLD`, 128 KiB by default; glibc looks when a free leaves a
    /// large free block, and keeps its `M_TOP_PAD`).
    @discardableResult
    public static func fixTrimThreshold(at bytes: Int32) -> Bool {
        setMallocOption(M_TRIM_THRESHOLD, bytes)
    }

    /// `mallopt`; false when glibc refuses the value, or without glibc.
    private static func setMallocOption(_ option: Int32, _ value: Int32) -> Bool {
        #if canImport(Glibc)
        return mallopt(option, value) == 1
        #else
        return false
        #endif
    }

    /// The bytes malloc holds from the system for its heaps, in use or free, every arena
    /// together (`mallinfo2().arena`). It grows when malloc needs more heap than its free chunks
    /// hold, and shrinks when a trim or malloc itself gives a heap's top back; blocks with pages
    /// of their own (mmap) are not in it.
    public static func heapBytes() -> Int? {
        #if canImport(Glibc)
        return Int(exactly: mallinfo2().arena)
        #else
        return nil
        #endif
    }

    /// Trims every `interval` until the calling task is cancelled, when `policy` says so, logging
    /// each trim's cost at debug level. With a `reserve`, the first interval and every trim
    /// leave that many bytes at the heap's top with their pages resident (`prefaultTop`; the
    /// caller fixes the top pad to it), so that the RSS taken after the first minute holds them.
    public static func run(
        every interval: Duration = .seconds(60), policy: TrimPolicy = .everyInterval, reserve: Int? = nil, logger: Logger
    ) async {
        let clock = ContinuousClock()
        var baseline: Int?
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            let start = clock.now
            let look: TrimLook
            do {
                look = try await NIOThreadPool.singleton.runIfActive { [baseline] in
                    // mallinfo2 walks every arena's free chunks: only a policy that uses it asks.
                    let heap = policy.readsHeapSize ? heapBytes() : nil
                    let trims = policy.shouldTrim(heapBytes: heap, baseline: baseline)
                    guard trims || (baseline == nil && reserve != nil) else { return TrimLook(released: nil, heapBytes: heap, reserved: nil) }
                    let released = trims ? trim(keeping: reserve ?? 0) : nil
                    let reserved = reserve.map { prefaultTop(bytes: $0) }
                    return TrimLook(released: released, heapBytes: policy.readsHeapSize ? heapBytes() : nil, reserved: reserved)
                }
            } catch { return }
            if baseline == nil || look.released != nil { baseline = look.heapBytes }
            if let released = look.released {
                logger.debug("heap trimmed", metadata: ["released": "\(released)", "took": "\(clock.now - start)"])
            }
            if let reserved = look.reserved {
                logger.debug("heap top faulted in", metadata: ["bytes": "\(reserved)", "heap": "\(look.heapBytes.map(String.init) ?? "-")"])
            }
        }
    }

    /// One interval's look: whether a trim gave pages back (nil: no trim), the heap's size after
    /// it, and what the reserve's faulting in wrote.
    private struct TrimLook: Sendable {
        let released: Bool?
        let heapBytes: Int?
        /// The bytes `prefaultTop` wrote, when it ran.
        let reserved: Int?
    }
}

/// When the periodic trim gives the heap's free pages back.
///
/// A trim takes every whole free page, also those of free chunks that malloc hands out again
/// later: the allocations that land there fault them back in, a page at a time, for minutes
/// (the console's RSS rose by 20 to 32 KiB over its watches' reconnects after one trim of 56 KiB
/// at its first minute). So a process that means to stay flat trims only after its heap grew,
/// once running: after a burst such as a relist of many objects, whose freed megabytes are what
/// a trim is for. The heap's size says so, where the RSS does not: a log pane's ring, in pages of
/// its own, raised the RSS by megabytes and made the console trim.
public enum TrimPolicy: Sendable, Equatable {
    /// Trim at every interval (`tenops operator`).
    case everyInterval
    /// Take the heap's size at the first interval as the baseline, then trim only once it is
    /// `bytes` or more above the baseline; a trim sets the baseline again.
    case afterHeapGrowth(bytes: Int)

    /// Whether `shouldTrim` looks at the heap's size.
    public var readsHeapSize: Bool { self != .everyInterval }

    /// Whether to trim now, with the heap's size now and the baseline (nil at the first
    /// interval). A heap whose size cannot be read trims, as `everyInterval` does.
    public func shouldTrim(heapBytes: Int?, baseline: Int?) -> Bool {
        switch self {
        case .everyInterval:
            return true
        case .afterHeapGrowth(let bytes):
            guard let heapBytes else { return true }
            guard let baseline else { return false }
            return heapBytes - baseline >= bytes
        }
    }
}
