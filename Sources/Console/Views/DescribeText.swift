import KubeAPI
import Yams

/// `d` (describe): an object as YAML, written by Yams. The well-known top-level fields come
/// first, as kubectl prints them; managedFields, which no person reads, is left out.
public enum DescribeText {
    public static func yaml(_ object: JSONObject) -> String {
        var top = object
        if var metadata = top["metadata"]?.objectValue {
            metadata["managedFields"] = nil
            top["metadata"] = .object(metadata)
        }
        let order = ["apiVersion", "kind", "metadata", "spec", "status"]
        let keys = order.filter { top[$0] != nil } + top.keys.filter { !order.contains($0) }.sorted()
        let root = Yams.Node(keys.map { (Yams.Node($0), node(top[$0] ?? .null)) })
        do {
            return try Yams.serialize(node: root, width: -1, allowUnicode: true)
        } catch {
            return "# cannot be shown as YAML: \(error)\n"
        }
    }

    static func node(_ value: JSONValue) -> Yams.Node {
        switch value {
        case .null: return Yams.Node("null")
        case .bool(let flag): return Yams.Node(flag ? "true" : "false")
        case .int(let number): return Yams.Node(String(number))
        case .double(let number): return Yams.Node(String(number))
        case .string(let text):
            if text.contains("\n") { return Yams.Node(text, .implicit, .literal) }
            // A string YAML would read back as something else ("1", "true", "") is quoted.
            let plain = Yams.Node(text)
            return plain.tag.rawValue == Tag.Name.str.rawValue && !text.isEmpty ? plain : Yams.Node(text, .implicit, .doubleQuoted)
        case .array(let elements): return Yams.Node(elements.map(node))
        case .object(let members): return Yams.Node(members.keys.sorted().map { (Yams.Node($0), node(members[$0] ?? .null)) })
        }
    }
}
