import CCurl
import Foundation
import Synchronization

/// libcurl's memory, through `curl_global_init_mem`, for a process that must keep its heap still
/// under a long stream (the console). curl makes a receive buffer (16 KiB + 1) and an upload
/// buffer (16 KiB here) for each transfer and frees them when it ends: for a watch, minutes later.
/// When a watch was made again, the two just freed had already been cut up by the stream's small
/// blocks, so malloc placed the new ones at the top of the heap, on pages never used before, and
/// the RSS rose by a page or two at each informer's reconnect (traced with uprobes on malloc:
/// every new heap page after the first minute came from these). Here a block of
/// `largeBlockBytes` or more that curl frees is kept, by size, and the next transfer gets it
/// back: the heap keeps its layout.
///
/// Every block carries a header of 16 bytes, before what curl sees, holding the size curl asked
/// for; the blocks stay aligned as malloc aligns them.
public enum CurlMemory {
    static let headerBytes = 16
    /// Blocks this large or larger are kept when freed; no smaller block is. Besides its two
    /// buffers, curl makes one block of 1,496 bytes per transfer, which landed on a new heap page
    /// too; smaller ones find room among the heap's free chunks.
    static let largeBlockBytes = 1 << 10
    /// Nor is a block larger than this (curl's growing buffers pass through many sizes).
    static let largestKeptBytes = 64 << 10
    static let kept = KeptBlocks(perSize: 16, maximumBytes: 1 << 20)

    /// Makes libcurl allocate through `CurlMemory`. It must come before the first transport;
    /// false when curl was initialized already (its allocator is then malloc's, for good).
    @discardableResult
    public static func install() -> Bool {
        CurlGlobal.initialize(keepingLargeBlocks: true)
    }

    /// Whether curl allocates through `CurlMemory` in this process.
    public static var isInstalled: Bool { CurlGlobal.keepsLargeBlocks }

    /// Calls `curl_global_init_mem` with the functions below.
    static func initializeCurl() -> CURLcode {
        curl_global_init_mem(
            Int(CURL_GLOBAL_DEFAULT),
            { CurlMemory.allocate($0) },
            { CurlMemory.release($0) },
            { CurlMemory.reallocate($0, $1) },
            { CurlMemory.duplicate($0) },
            { CurlMemory.allocateZeroed($0, $1) })
    }

    static func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let reused = isKeptSize(size) ? kept.take(size: size) : nil
        guard size <= Int.max - headerBytes, let block = reused ?? malloc(size + headerBytes) else { return nil }
        block.storeBytes(of: size, as: Int.self)
        return block + headerBytes
    }

    static func release(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let block = pointer - headerBytes
        let size = block.load(as: Int.self)
        if isKeptSize(size), kept.keep(block, size: size) { return }
        free(block)
    }

    static func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(size) }
        let old = (pointer - headerBytes).load(as: Int.self)
        if !isKeptSize(old), !isKeptSize(size) {
            // Neither block is one to keep: malloc's realloc, which may grow in place.
            guard size <= Int.max - headerBytes, let block = realloc(pointer - headerBytes, size + headerBytes) else { return nil }
            block.storeBytes(of: size, as: Int.self)
            return block + headerBytes
        }
        guard let moved = allocate(size) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(old, size))
        release(pointer)
        return moved
    }

    static func allocateZeroed(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, let pointer = allocate(bytes) else { return nil }
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        return pointer
    }

    static func duplicate(_ string: UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
        guard let string else { return nil }
        let bytes = strlen(string) + 1
        guard let copy = allocate(bytes) else { return nil }
        copy.copyMemory(from: string, byteCount: bytes)
        return copy.assumingMemoryBound(to: CChar.self)
    }

    static func isKeptSize(_ size: Int) -> Bool { size >= largeBlockBytes && size <= largestKeptBytes }
}

/// Freed blocks kept by size for the next allocation of that size: at most `perSize` of one
/// size and `maximumBytes` in all. One flat list, searched from its end: a take or a keep makes
/// nothing on the heap (a dictionary of arrays made three blocks at each take).
final class KeptBlocks: Sendable {
    private struct Block: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let size: Int
    }

    private struct Idle {
        var blocks: [Block] = []
        var bytes = 0
    }

    let perSize: Int
    let maximumBytes: Int
    private let idle: Mutex<Idle>

    init(perSize: Int, maximumBytes: Int) {
        self.perSize = perSize
        self.maximumBytes = maximumBytes
        var blocks: [Block] = []
        blocks.reserveCapacity(64)
        idle = Mutex(Idle(blocks: blocks))
    }

    /// The block of exactly `size` kept last, if any.
    func take(size: Int) -> UnsafeMutableRawPointer? {
        idle.withLock { idle in
            guard let index = idle.blocks.lastIndex(where: { $0.size == size }) else { return nil }
            idle.bytes -= size
            return idle.blocks.remove(at: index).pointer
        }
    }

    /// Keeps `block` unless a bound is reached: then false, and the caller frees it.
    func keep(_ block: UnsafeMutableRawPointer, size: Int) -> Bool {
        idle.withLock { idle in
            guard idle.bytes + size <= maximumBytes, idle.blocks.count(where: { $0.size == size }) < perSize else { return false }
            idle.blocks.append(Block(pointer: block, size: size))
            idle.bytes += size
            return true
        }
    }

    /// How many blocks of `size` are kept, and how many bytes in all (the tests look at them).
    func count(size: Int) -> Int { idle.withLock { $0.blocks.count(where: { $0.size == size }) } }
    var bytes: Int { idle.withLock { $0.bytes } }
}
