import Foundation
import Testing
@testable import KubeAPI

/// `JSONValue.parseYAMLDocuments`: a YAML stream as its documents.
@Suite("YAML documents", .timeLimit(.minutes(5)))
struct YAMLDocumentsTests {
    @Test("every document, in order; empty ones left out", arguments: [
        ("a: 1\n", [["a": 1]]),
        ("a: 1\n---\nb: two\n---\n- x\n- 2\n", [["a": 1], ["b": "two"], ["x", 2]]),
        ("---\na: 1\n---\n---\n\n---\nb: 2\n---\n", [["a": 1], ["b": 2]]),
        ("# only a comment\n---\na: 1\n...\n---\n~\n", [["a": 1]]),
        ("", []),
        ("---\n", []),
        ("# nothing but comments\n", []),
    ] as [(String, [JSONValue])])
    func documents(text: String, expected: [JSONValue]) throws {
        #expect(try JSONValue.parseYAMLDocuments(text, source: "test.yaml") == expected)
    }

    @Test("an invalid document is an error that names the source", arguments: [
        "a: [1\n",
        "a: 1\n---\nb: [1\n",
        "a: 1\n---\nb: c: d\n",
        "a: 1\n---\nb: 2\n---\n  - x\n y: z\n",
        "a: 1\n---\nb: .inf\n",
        "a: 1\n---\n? [1, 2]\n: x\n",
    ])
    func invalid(text: String) {
        do throws(KubeAPIError) {
            let documents = try JSONValue.parseYAMLDocuments(text, source: "broken.yaml")
            Issue.record("parsed into \(documents)")
        } catch {
            #expect(error.description.contains("broken.yaml"), "\(error)")
        }
    }

    @Test("a document JSON cannot hold is named by its number")
    func documentNumber() {
        #expect(throws: KubeAPIError.configuration("broken.yaml document 2: b: JSON has no number .inf")) {
            try JSONValue.parseYAMLDocuments("a: 1\n---\nb: .inf\n", source: "broken.yaml")
        }
    }
}
