import Foundation
import Testing

@testable import KubeAPI

@Suite("Streamed chunks' buffers", .timeLimit(.minutes(1)))
struct ChunkBuffersTests {
    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed } }

    static func chunk(_ buffers: ChunkBuffers, _ bytes: [UInt8]) -> Data { bytes.withUnsafeBytes { buffers.chunk($0) } }

    @Test("a chunk that fills more than half a buffer gets a kept one, taken back when the chunk goes; smaller and larger ones do not",
          arguments: [(100, false), (8 << 10, false), ((8 << 10) + 1, true), (16 << 10, true), ((16 << 10) + 1, false)])
    func keptBuffers(count: Int, kept: Bool) {
        let buffers = ChunkBuffers(bufferBytes: 16 << 10, capacity: 4)
        let bytes = Self.bytes(count, seed: 7)
        do {
            let data = Self.chunk(buffers, bytes)
            #expect(Array(data) == bytes)
            #expect(buffers.idleCount == 0)
        }
        #expect(buffers.idleCount == (kept ? 1 : 0))
    }

    @Test("a kept buffer serves the next chunk, which holds only its own bytes; a chunk changed is copied first")
    func reuse() {
        let buffers = ChunkBuffers(bufferBytes: 16 << 10, capacity: 4)
        let first = Self.bytes(16 << 10, seed: 1)
        let second = Self.bytes(12 << 10, seed: 2)
        _ = Self.chunk(buffers, first)
        #expect(buffers.idleCount == 1)
        var data = Self.chunk(buffers, second)
        #expect(buffers.idleCount == 0)
        #expect(Array(data) == second)
        let third = Self.bytes(10 << 10, seed: 3)
        let held = Self.chunk(buffers, third)
        data.append(contentsOf: [1, 2, 3])
        #expect(Array(data) == second + [1, 2, 3])
        // The chunk grew into storage of its own and gave its buffer back.
        #expect(buffers.idleCount == 1)
        #expect(Array(held) == third)
    }

    /// The last holder of a chunk's bytes, handed from one thread to another.
    final class Holder: @unchecked Sendable {
        var data: Data?
    }

    @Test("a slice of a chunk keeps its buffer from the next chunks until it goes, on any thread")
    func sharedBuffer() async {
        let buffers = ChunkBuffers(bufferBytes: 16 << 10, capacity: 4)
        let bytes = Self.bytes(16 << 10, seed: 9)
        let expected = Array(bytes[100..<9_000])
        let holder = Holder()
        holder.data = Self.chunk(buffers, bytes)[100..<9_000]
        #expect(buffers.idleCount == 0)
        do {
            // Other chunks meanwhile get buffers of their own, not the slice's.
            let others = (0..<3).map { Self.chunk(buffers, Self.bytes(12 << 10, seed: UInt8(20 + $0))) }
            #expect(others.enumerated().allSatisfy { Array($0.element) == Self.bytes(12 << 10, seed: UInt8(20 + $0.offset)) })
            #expect(holder.data.map(Array.init) == expected)
        }
        #expect(buffers.idleCount == 3)
        // The slice goes on another thread, and its buffer comes back.
        await Task.detached {
            #expect(holder.data.map(Array.init) == expected)
            holder.data = nil
        }.value
        #expect(buffers.idleCount == 4)
    }

    @Test("no more than the capacity is kept; the rest is freed")
    func capacity() {
        let buffers = ChunkBuffers(bufferBytes: 16 << 10, capacity: 2)
        do {
            let held = (0..<5).map { Self.chunk(buffers, Self.bytes(12 << 10, seed: UInt8($0))) }
            #expect(held.enumerated().allSatisfy { Array($0.element) == Self.bytes(12 << 10, seed: UInt8($0.offset)) })
            #expect(buffers.idleCount == 0)
        }
        #expect(buffers.idleCount == 2)
    }
}
