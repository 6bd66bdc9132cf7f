import Foundation
import Glibc
import Logging
import NIOCore
@testable import OperatorEngine
import Synchronization
import Testing

/// `PageBackedAllocator`: buffers keep their bytes through every operation, and a large buffer
/// costs only the pages written (read with mincore(2), which asks the kernel itself).
@Suite struct PageBackedAllocatorTests {
    @Test(arguments: [1, 100, 4_000, 16_367, 16_368, 16_384, 32_768, 200_000])
    func buffersKeepTheirBytesThroughWritesGrowthAndCopies(capacity: Int) {
        var buffer = PageBackedAllocator.allocator.buffer(capacity: capacity)
        #expect(buffer.capacity >= capacity)
        let pattern = (0..<(capacity + 5_000)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        buffer.writeBytes(pattern)  // grows past the first capacity: reallocate
        #expect(buffer.readableBytesView.elementsEqual(pattern))
        var copy = buffer  // copy on write: allocate and copy
        copy.writeInteger(UInt8(7))
        #expect(buffer.readableBytes == pattern.count)
        #expect(copy.readableBytes == pattern.count + 1)
        #expect(copy.readableBytesView.prefix(pattern.count).elementsEqual(pattern))
        buffer.withUnsafeReadableBytes { bytes in
            #expect(Int(bitPattern: bytes.baseAddress) % 16 == 0, "as aligned as malloc's")
        }
    }

    @Test(arguments: [(16_367, false), (16_368, true), (1, false), (49_152, true)])
    func theThresholdCountsTheHeader(size: Int, mapped: Bool) {
        #expect(PageBackedAllocator.isMapped(size: size) == mapped)
    }

    @Test func aMappedBufferHasOnlyItsWrittenPagesResident() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let capacity = 64 * page
        var buffer = PageBackedAllocator.allocator.buffer(capacity: capacity)
        buffer.writeBytes([UInt8](repeating: 0xA5, count: 300))
        let (before, total) = try residentPages(of: &buffer, page: page)
        #expect(total >= 64)
        #expect(before <= 2, "\(before) of \(total) pages resident after writing 300 bytes")

        buffer.writeBytes([UInt8](repeating: 0x5A, count: 20 * page))
        let (after, _) = try residentPages(of: &buffer, page: page)
        #expect(after >= 20 && after <= 23, "\(after) pages resident after writing 20 pages more")
    }

    /// The header in front of a block's bytes: 0 for a malloc'd block, else the whole pages
    /// mapped. Asked of the allocator itself: a ByteBuffer rounds its capacity up to a power of two.
    @Test(arguments: [(512, 0), (16_367, 0), (16_368, 16_384), (32_768, 36_864), (49_152, 53_248)])
    func theHeaderSaysHowTheBlockWasMade(size: Int, mappedBytes: Int) throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let block = try #require(PageBackedAllocator.allocate(size))
        defer { PageBackedAllocator.deallocate(block) }
        block.storeBytes(of: 0xA5, toByteOffset: size - 1, as: UInt8.self)  // the last byte is the block's
        let header = block.advanced(by: -PageBackedAllocator.headerSize).load(as: Int.self)
        // The expected lengths assume 4 KB pages; round them up to this machine's.
        #expect(header == (mappedBytes + page - 1) / page * page)
        #expect(Int(bitPattern: block) % 16 == 0)
    }

    /// The resident pages of the mapping under `buffer`'s bytes, and the pages it spans.
    private func residentPages(of buffer: inout ByteBuffer, page: Int) throws -> (resident: Int, total: Int) {
        let capacity = buffer.capacity
        return try buffer.withVeryUnsafeMutableBytes { bytes in
            let start = Int(bitPattern: bytes.baseAddress) - PageBackedAllocator.headerSize
            #expect(start % page == 0, "a mapped block starts on a page")
            let length = (capacity + PageBackedAllocator.headerSize + page - 1) / page * page
            var vector = [UInt8](repeating: 0, count: length / page)
            let result = mincore(UnsafeMutableRawPointer(bitPattern: start), length, &vector)
            guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EINVAL) }
            return (vector.filter { $0 & 1 == 1 }.count, vector.count)
        }
    }
}

/// `HeapTrimmer`: freed heap pages leave RSS when it trims (read from /proc/self/statm). Serialized:
/// one test's trim would take the holes another measures.
@Suite(.serialized) struct HeapTrimmerTests {
    @Test func freedPagesGoBackToTheKernel() throws {
        let kept = try Self.leaveHoles()
        defer { kept.forEach { free($0) } }
        let before = try residentBytes()
        HeapTrimmer.trim()
        let after = try residentBytes()
        #expect(before - after >= 10 << 20, "RSS \(before >> 20) MiB before the trim, \(after >> 20) MiB after")
    }

    @Test func theTrimmerTrimsOnItsIntervalUntilCancelled() async throws {
        let kept = try Self.leaveHoles()
        defer { kept.forEach { free($0) } }
        let before = try residentBytes()
        let trimmer = Task { await HeapTrimmer.run(every: .milliseconds(20), logger: Logger(label: "test")) }
        defer { trimmer.cancel() }
        var after = before
        for _ in 0..<250 where before - after < 10 << 20 {
            try await Task.sleep(for: .milliseconds(20))
            after = try residentBytes()
        }
        #expect(before - after >= 10 << 20, "RSS \(before >> 20) MiB before, \(after >> 20) MiB 5 s into the trimmer")
        trimmer.cancel()
        await trimmer.value  // ends once cancelled
    }

    @Test func afterHeapGrowthTheTrimmerWaitsForTheHeapToGrowThenTrims() async throws {
        let kept = try Self.leaveHoles()
        defer { kept.forEach { free($0) } }
        let trims = TrimsLogged()
        var logger = Logger(label: "test") { _ in trims }
        logger.logLevel = .debug
        let before = try residentBytes()
        let trimmer = Task { await HeapTrimmer.run(every: .milliseconds(20), policy: .afterHeapGrowth(bytes: 2 << 20), logger: logger) }
        defer { trimmer.cancel() }
        // The first interval takes the heap's size, holes and all, as the baseline; then fifteen
        // with the heap as it was: no trim.
        try await Task.sleep(for: .milliseconds(300))
        #expect(trims.count == 0, "trimmed with the heap as it was")
        let waited = try residentBytes()
        #expect(before - waited < 10 << 20, "RSS \(before >> 20) MiB before, \(waited >> 20) MiB with the heap as it was")
        // Pages of their own do not count: 4 MiB mapped and written, no trim.
        let size = 4 << 20
        let mapped = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(mapped != MAP_FAILED)
        defer { munmap(mapped, size) }
        memset(mapped, 0x5A, size)
        try await Task.sleep(for: .milliseconds(300))
        #expect(trims.count == 0, "trimmed for 4 MiB in pages of their own")
        // The heap grows by 8 MiB: an interval after it trims. (That trims give pages back is
        // `freedPagesGoBackToTheKernel`'s; here an interval may fall while the heap grows.)
        let grown = try Self.growHeap(by: 8 << 20)
        defer { grown.forEach { free($0) } }
        for _ in 0..<250 where trims.count == 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(trims.count >= 1, "no trim 5 s after the heap grew by 8 MiB")
        trimmer.cancel()
        await trimmer.value
    }

    @Test func withAReserveTheTrimmerFaultsTheTopInAtTheFirstIntervalAndAfterEachTrim() async throws {
        let log = TrimsLogged()
        let logger = Logger(label: "test") { _ in log }
        // A growth policy that does not trim: the first interval only.
        let waiting = Task {
            await HeapTrimmer.run(every: .milliseconds(20), policy: .afterHeapGrowth(bytes: 1 << 30), reserve: 256 << 10, logger: logger)
        }
        for _ in 0..<250 where log.topFaults == 0 { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(300))
        waiting.cancel()
        await waiting.value
        #expect(log.topFaults == 1, "the top faulted in \(log.topFaults) times in 15 intervals without a trim")
        #expect(log.count == 0)
        // A policy that trims at every interval faults the top in after each trim.
        let trimming = Task { await HeapTrimmer.run(every: .milliseconds(20), reserve: 256 << 10, logger: logger) }
        for _ in 0..<250 where log.count < 3 { try await Task.sleep(for: .milliseconds(20)) }
        trimming.cancel()
        await trimming.value
        #expect(log.count >= 3)
        #expect(log.topFaults == 1 + log.count, "\(log.count) trims, the top faulted in \(log.topFaults - 1) times after them")
    }

    @Test(arguments: [
        (TrimPolicy.everyInterval, 50, 60, true),
        (.everyInterval, 60, 60, true),
        (.everyInterval, nil, nil, true),
        (.afterHeapGrowth(bytes: 1_000), 60_999, 60_000, false),
        (.afterHeapGrowth(bytes: 1_000), 61_000, 60_000, true),
        (.afterHeapGrowth(bytes: 1_000), 59_000, 60_000, false),
        (.afterHeapGrowth(bytes: 1_000), 900_000, nil, false),
        (.afterHeapGrowth(bytes: 1_000), nil, 60_000, true),
        (.afterHeapGrowth(bytes: 1_000), nil, nil, true),
    ] as [(TrimPolicy, Int?, Int?, Bool)])
    func thePolicyTrimsAtEveryIntervalOrAfterHeapGrowth(policy: TrimPolicy, heapBytes: Int?, baseline: Int?, trims: Bool) {
        #expect(policy.shouldTrim(heapBytes: heapBytes, baseline: baseline) == trims)
    }

    @Test func onlyTheGrowthPolicyReadsTheHeapSize() {
        #expect(!TrimPolicy.everyInterval.readsHeapSize)
        #expect(TrimPolicy.afterHeapGrowth(bytes: 1 << 20).readsHeapSize)
    }

    @Test func theHeapSizeFollowsTheHeapsGrowth() throws {
        let start = try #require(HeapTrimmer.heapBytes())
        let grown = try Self.growHeap(by: 1 << 20)
        defer { grown.forEach { free($0) } }
        let end = try #require(HeapTrimmer.heapBytes())
        #expect(end - start >= 1 << 20)
    }

    /// Writes 1 KB blocks, one in 32 kept and the others freed after, until the heap holds
    /// `bytes` more than it did: the blocks already free in the heap are used up first.
    /// Returns the blocks kept.
    private static func growHeap(by bytes: Int) throws -> [UnsafeMutableRawPointer] {
        let start = try #require(HeapTrimmer.heapBytes())
        var blocks: [UnsafeMutableRawPointer] = []
        // mallinfo2 walks the heap's free chunks: it is asked after every 256 blocks.
        while let end = HeapTrimmer.heapBytes(), end - start < bytes, blocks.count < 400 << 10 {
            for _ in 0..<256 {
                let block = try #require(malloc(1_024))
                memset(block, 0x5A, 1_024)
                blocks.append(block)
            }
        }
        #expect(try #require(HeapTrimmer.heapBytes()) - start >= bytes, "the heap did not grow by \(bytes) bytes in 400 MB of blocks")
        var kept: [UnsafeMutableRawPointer] = []
        for (index, block) in blocks.enumerated() {
            if index % 32 == 0 { kept.append(block) } else { free(block) }
        }
        return kept
    }

    /// Writes 40 MB of 1 KB blocks and frees all but one in 32, so that the free space is holes
    /// malloc keeps, not a top it would give back by itself. Returns the blocks kept.
    private static func leaveHoles() throws -> [UnsafeMutableRawPointer] {
        let blockSize = 1_024
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(40 * 1_024) {
            let block = try #require(malloc(blockSize))
            memset(block, 0x5A, blockSize)
            blocks.append(block)
        }
        var kept: [UnsafeMutableRawPointer] = []
        for (index, block) in blocks.enumerated() {
            if index % 32 == 0 { kept.append(block) } else { free(block) }
        }
        return kept
    }

    private func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let fields = statm.split(separator: " ")
        let pages = try #require(fields.count > 1 ? Int(fields[1]) : nil)
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Counts the trimmer's "heap trimmed" and "heap top faulted in" records (debug level),
/// whatever thread logs them.
private final class TrimsLogged: LogHandler, @unchecked Sendable {
    private let trims = Mutex(0)
    private let faults = Mutex(0)
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    var count: Int { trims.withLock { $0 } }
    var topFaults: Int { faults.withLock { $0 } }

    func log(event: LogEvent) {
        switch event.message.description {
        case "heap trimmed": trims.withLock { $0 += 1 }
        case "heap top faulted in": faults.withLock { $0 += 1 }
        default: break
        }
    }
}
