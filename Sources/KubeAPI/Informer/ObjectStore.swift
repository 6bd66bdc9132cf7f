import Foundation
import Synchronization

/// A function that files an object under zero or more index values.
public typealias IndexFunction<T> = @Sendable (T) -> [String]

/// A thread-safe cache of objects by key, with a namespace index and custom indexes, as
/// client-go's thread-safe store with indexers.
public final class ObjectStore<T: APIObject>: Sendable {
    public static var namespaceIndex: String { "namespace" }

    /// How the objects are held.
    public enum Layout: Sendable {
        /// As parsed JSON trees: a read costs nothing.
        case parsed
        /// As compact JSON text: a third to a quarter of the memory, and each read parses the
        /// object again (a few microseconds for a Pod). For caches of many objects read seldom,
        /// such as an operator's at rest.
        case compact
    }

    /// One object as held.
    private enum Entry: Sendable, Equatable {
        case parsed(T)
        case compact(Data)
    }

    private struct State {
        var objects: [ObjectKey: Entry] = [:]
        /// index name -> index value -> keys
        var indexes: [String: [String: Set<ObjectKey>]] = [:]
    }

    private let state = Mutex(State())
    private let indexers: [String: IndexFunction<T>]
    public let layout: Layout
    private let transform: (@Sendable (T) -> T)?

    /// `transform`, as client-go's informer transform: what the cache keeps of each object, for
    /// a cache whose readers need only part of it. The indexers see what it keeps.
    public init(indexers: [String: IndexFunction<T>] = [:], layout: Layout = .parsed, transform: (@Sendable (T) -> T)? = nil) {
        var all = indexers
        all[Self.namespaceIndex] = { [$0.metadata.namespace ?? ""] }
        self.indexers = all
        self.layout = layout
        self.transform = transform
    }

    /// What the store keeps of `object`: the transform's result, else the object.
    private func kept(_ object: T) -> T { transform?(object) ?? object }

    private func entry(_ object: T) -> Entry {
        switch layout {
        case .parsed: return .parsed(object)
        case .compact: return .compact(JSONWriter.data(object.json))
        }
    }

    private static func object(_ entry: Entry) -> T {
        switch entry {
        case .parsed(let object):
            return object
        case .compact(let data):
            // Written by JSONWriter from a JSON object: it parses, or the writer is broken.
            guard let json = try? JSONParser.parseObject(data) else { preconditionFailure("ObjectStore: a compact entry does not parse") }
            return T(json: json)
        }
    }

    public func get(_ key: ObjectKey) -> T? { state.withLock { $0.objects[key] }.map(Self.object) }
    public func get(namespace: String?, name: String) -> T? { get(ObjectKey(namespace: namespace, name: name)) }

    public var count: Int { state.withLock { $0.objects.count } }
    public var keys: [ObjectKey] { state.withLock { Array($0.objects.keys) } }

    /// Every object, sorted by key so that callers see a stable order.
    public func list() -> [T] {
        state.withLock { state in state.objects.sorted { $0.key < $1.key }.map(\.value) }.map(Self.object)
    }

    public func list(namespace: String) -> [T] { byIndex(Self.namespaceIndex, namespace) }

    /// Objects filed under `value` in index `name`, sorted by key.
    public func byIndex(_ name: String, _ value: String) -> [T] {
        state.withLock { state in
            (state.indexes[name]?[value] ?? []).sorted().compactMap { state.objects[$0] }
        }.map(Self.object)
    }

    /// Inserts or replaces; returns the previous object.
    @discardableResult
    func upsert(_ received: T) -> T? {
        let object = kept(received)
        let new = entry(object)
        return state.withLock { state in
            let key = object.key
            let old = state.objects.updateValue(new, forKey: key).map(Self.object)
            if let old { unindex(old, key: key, in: &state) }
            index(object, key: key, in: &state)
            return old
        }
    }

    @discardableResult
    func remove(_ key: ObjectKey) -> T? {
        state.withLock { state in
            guard let old = state.objects.removeValue(forKey: key).map(Self.object) else { return nil }
            unindex(old, key: key, in: &state)
            return old
        }
    }

    /// Replaces the whole content after a (re)list and returns what changed.
    func replace(with objects: [T]) -> [InformerEvent<T>] {
        let fresh = objects.map { received in
            let object = kept(received)
            return (object, entry(object))
        }
        let changes: [(old: Entry?, new: T?)] = state.withLock { state in
            var changes: [(old: Entry?, new: T?)] = []
            var seen = Set<ObjectKey>()
            var replacement = State()
            for (object, entry) in fresh {
                let key = object.key
                seen.insert(key)
                replacement.objects[key] = entry
                index(object, key: key, in: &replacement)
                if let old = state.objects[key] {
                    if old != entry { changes.append((old, object)) }
                } else {
                    changes.append((nil, object))
                }
            }
            for (key, old) in state.objects where !seen.contains(key) {
                changes.append((old, nil))
            }
            state = replacement
            return changes
        }
        return changes.compactMap { change -> InformerEvent<T>? in
            switch (change.old.map(Self.object), change.new) {
            case (nil, let new?): return .added(new)
            case (let old?, let new?): return .updated(old: old, new: new)
            case (let old?, nil): return .deleted(old)
            case (nil, nil): return nil
            }
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
