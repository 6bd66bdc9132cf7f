import Foundation
import KubeAPI
import Synchronization

/// Pod IPs on loopback: every pod of a node gets an address of its own from the node's range,
/// so servers in different pods can all bind the same port.
///
/// The range is the node address's `prefix` (one to three octets, e.g. `127.1.0`) followed by
/// every remaining combination, last octet 1...254, leaving out the node's own address: a node
/// at 127.1.0.1 gives its pods 127.1.0.2, 127.1.0.3, ...
///
/// Allocations are sticky: a pod keeps its address while it lives, across node restarts, and a
/// pod recreated under the same name (a StatefulSet's) gets its old address back. An address
/// released by a deleted pod goes to another pod only when no never-used address is left.
struct PodAddressPool: Sendable, Equatable {
    let prefix: [UInt8]
    let excluded: String
    /// pod key ("namespace/name") -> address
    private(set) var assigned: [String: String] = [:]
    /// Keys whose pods are gone, oldest first; their addresses may be handed out again.
    private(set) var released: [String] = []

    init(prefix: String, nodeAddress: String) throws(LocalClusterError) {
        let octets = prefix.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
        guard (1...3).contains(octets.count), octets.allSatisfy({ $0 != nil }) else {
            throw .configuration("the pod address prefix must be one to three IPv4 octets such as 127.1.0, not \"\(prefix)\"")
        }
        self.prefix = octets.map { $0! }
        excluded = nodeAddress
    }

    /// The first three octets of an IPv4 address: the default prefix.
    static func defaultPrefix(forNodeAddress address: String) -> String {
        address.split(separator: ".").prefix(3).joined(separator: ".")
    }

    /// How many addresses the range holds.
    var capacity: Int {
        let free = 3 - prefix.count
        return (free == 0 ? 1 : Int(pow(256.0, Double(free)))) * 254
    }

    /// The address at `index` of the range, in order.
    func candidate(_ index: Int) -> String {
        var rest = index / 254
        let last = UInt8(index % 254 + 1)
        var middle: [UInt8] = []
        for _ in 0..<(3 - prefix.count) {
            middle.insert(UInt8(rest % 256), at: 0)
            rest /= 256
        }
        return (prefix + middle + [last]).map(String.init).joined(separator: ".")
    }

    /// The pod's address: the one it had, else a never-used one, else the longest-released one.
    mutating func address(for key: String) -> String? {
        if let existing = assigned[key] {
            released.removeAll { $0 == key }
            return existing
        }
        let taken = Set(assigned.values)
        var index = 0
        while index < capacity {
            let address = candidate(index)
            if address != excluded && !taken.contains(address) {
                assigned[key] = address
                return address
            }
            index += 1
        }
        guard !released.isEmpty else { return nil }
        let reused = released.removeFirst()
        let address = assigned.removeValue(forKey: reused)
        assigned[key] = address
        return address
    }

    /// Marks a pod as gone; its address stays reserved for it until the range runs out.
    mutating func release(_ key: String) {
        guard assigned[key] != nil, !released.contains(key) else { return }
        released.append(key)
    }

    var json: JSONObject {
        ["assigned": .object(assigned.mapValues(JSONValue.string)), "released": .array(released.map(JSONValue.string))]
    }

    mutating func restore(from json: JSONObject) {
        assigned = (json["assigned"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        released = (json["released"]?.arrayValue ?? []).compactMap(\.stringValue).filter { assigned[$0] != nil }
    }
}

/// A `PodAddressPool` kept in a file: every change is written before the address is used.
final class PodAddressBook: Sendable {
    private let path: String
    private let pool: Mutex<PodAddressPool>

    init(path: String, pool: PodAddressPool) {
        var pool = pool
        if let data = FileManager.default.contents(atPath: path), let json = try? JSONParser.parseObject(data) {
            pool.restore(from: json)
        }
        self.path = path
        self.pool = Mutex(pool)
    }

    func address(for key: ObjectKey) throws(LocalClusterError) -> String {
        let result: (String?, JSONObject) = pool.withLock { pool in (pool.address(for: key.description), pool.json) }
        guard let address = result.0 else { throw .io("no pod address is left in this node's range") }
        try save(result.1)
        return address
    }

    func release(_ key: ObjectKey) {
        let json = pool.withLock { pool in
            pool.release(key.description)
            return pool.json
        }
        try? save(json)
    }

    private func save(_ json: JSONObject) throws(LocalClusterError) {
        do {
            try JSONWriter.data(json).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .io("cannot write \(path): \(error)")
        }
    }
}
