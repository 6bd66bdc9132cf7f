/// The last `capacity` lines of a log, in a fixed-size ring: memory stays bounded however chatty
/// the container is, and appending never copies what is already kept.
public struct LogRing: Sendable, Equatable {
    public let capacity: Int
    private var storage: [String] = []
    private var start = 0
    /// Every line ever appended, kept or not.
    public private(set) var appended = 0

    public init(capacity: Int) {
        precondition(capacity > 0, "a log ring needs room for one line")
        self.capacity = capacity
        storage.reserveCapacity(capacity)
    }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }
    /// Lines appended and since dropped to make room.
    public var dropped: Int { appended - storage.count }

    public mutating func append(_ line: String) {
        appended += 1
        if storage.count < capacity {
            storage.append(line)
        } else {
            storage[start] = line
            start = (start + 1) % capacity
        }
    }

    /// Line `index`, 0 being the oldest kept.
    public subscript(index: Int) -> String { storage[(start + index) % storage.count] }

    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        start = 0
        appended = 0
    }
}
