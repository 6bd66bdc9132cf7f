import Synchronization

/// A function that files an object under zero or more index values.
public typealias IndexFunction<T> = @Sendable (T) -> [String]

/// A thread-safe cache of objects by key, with a namespace index and custom indexes, as
/// client-go's thread-safe store with indexers.
public final class ObjectStore<T: APIObject>: Sendable {
    public static var namespaceIndex: String { "namespace" }

    private struct State {
        var objects: [ObjectKey: T] = [:]
        /// index name -> index value -> keys
        var indexes: [String: [String: Set<ObjectKey>]] = [:]
    }

    private let state = Mutex(State())
    private let indexers: [String: IndexFunction<T>]

    public init(indexers: [String: IndexFunction<T>] = [:]) {
        var all = indexers
        all[Self.namespaceIndex] = { [$0.metadata.namespace ?? ""] }
        self.indexers = all
    }

    public func get(_ key: ObjectKey) -> T? { state.withLock { $0.objects[key] } }
    public func get(namespace: String?, name: String) -> T? { get(ObjectKey(namespace: namespace, name: name)) }

    public var count: Int { state.withLock { $0.objects.count } }
    public var keys: [ObjectKey] { state.withLock { Array($0.objects.keys) } }

    /// Every object, sorted by key so that callers see a stable order.
    public func list() -> [T] {
        state.withLock { state in state.objects.sorted { $0.key < $1.key }.map(\.value) }
    }

    public func list(namespace: String) -> [T] { byIndex(Self.namespaceIndex, namespace) }

    /// Objects filed under `value` in index `name`, sorted by key.
    public func byIndex(_ name: String, _ value: String) -> [T] {
        state.withLock { state in
            (state.indexes[name]?[value] ?? []).sorted().compactMap { state.objects[$0] }
        }
    }

    /// Inserts or replaces; returns the previous object.
    @discardableResult
    func upsert(_ object: T) -> T? {
        state.withLock { state in
            let key = object.key
            let old = state.objects.updateValue(object, forKey: key)
            if let old { unindex(old, key: key, in: &state) }
            index(object, key: key, in: &state)
            return old
        }
    }

    @discardableResult
    func remove(_ key: ObjectKey) -> T? {
        state.withLock { state in
            guard let old = state.objects.removeValue(forKey: key) else { return nil }
            unindex(old, key: key, in: &state)
            return old
        }
    }

    /// Replaces the whole content after a (re)list and returns what changed.
    func replace(with objects: [T]) -> [InformerEvent<T>] {
        state.withLock { state in
            var events: [InformerEvent<T>] = []
            var seen = Set<ObjectKey>()
            var fresh = State()
            for object in objects {
                let key = object.key
                seen.insert(key)
                fresh.objects[key] = object
                index(object, key: key, in: &fresh)
                if let old = state.objects[key] {
                    if old.metadata.resourceVersion != object.metadata.resourceVersion || old != object {
                        events.append(.updated(old: old, new: object))
                    }
                } else {
                    events.append(.added(object))
                }
            }
            for (key, old) in state.objects where !seen.contains(key) {
                events.append(.deleted(old))
            }
            state = fresh
            return events
        }
    }

    private func index(_ object: T, key: ObjectKey, in state: inout State) {
        for (name, function) in indexers {
            for value in function(object) { state.indexes[name, default: [:]][value, default: []].insert(key) }
        }
    }

    private func unindex(_ object: T, key: ObjectKey, in state: inout State) {
        for (name, function) in indexers {
            for value in function(object) {
                state.indexes[name]?[value]?.remove(key)
                if state.indexes[name]?[value]?.isEmpty == true { state.indexes[name]?[value] = nil }
            }
        }
    }
}

/// A change to an informer's cache.
public enum InformerEvent<T: APIObject>: Sendable {
    case added(T)
    case updated(old: T, new: T)
    case deleted(T)

    public var object: T {
        switch self {
        case .added(let o), .deleted(let o): return o
        case .updated(_, let o): return o
        }
    }
}
