import Foundation
import KubeAPI
import OperatorEngine
import Testing

@testable import Console

@Suite("Console overlays: help, describe, action dialogs", .timeLimit(.minutes(5)))
struct OverlayTests {
    static let screenSizes = [(80, 24), (200, 60)]

    /// The text inside the dialog's box, its lines joined by spaces (wrapping undone).
    static func boxText(_ grid: CellGrid) -> String? {
        guard let corner = grid.first("┌") else { return nil }
        let top = Array(grid.lines[corner.y])
        guard let right = top[(corner.x + 1)...].firstIndex(of: "┐") else { return nil }
        var words: [String] = []
        for y in (corner.y + 1)..<grid.height {
            let line = Array(grid.lines[y])
            if line[corner.x] == "└" { break }
            words.append(String(line[(corner.x + 1)..<right]).trimmingCharacters(in: .whitespaces))
        }
        return words.filter { !$0.isEmpty }.joined(separator: " ")
    }

    @Test("help lists every key, fitting at 80x24 and 200x60", arguments: screenSizes)
    func help(width: Int, height: Int) throws {
        var ui = ConsoleState()
        ui.overlay = .help
        let grid = Fixtures.render(Fixtures.listSnapshot(), ui, width: width, height: height)
        let text = try #require(Self.boxText(grid))
        for section in KeyMap.sections {
            #expect(text.contains(section.title))
            for key in section.keys {
                #expect(text.contains(key.keys + " "), "\(key.keys) missing")
                #expect(text.contains(key.action), "\(key.action) missing")
            }
        }
        #expect(grid.lines[height - 2].contains("Esc close"))
    }

    @Test("describe shows the object as YAML, kubectl's order first, managedFields left out, and scrolls", arguments: screenSizes)
    func describe(width: Int, height: Int) throws {
        let pair = Fixtures.pair(state: "Normal")
        let yaml = DescribeText.yaml(pair.object)
        #expect(yaml.hasPrefix("apiVersion: tenops.io/v1\nkind: TimesTenClassic\nmetadata:\n"))
        #expect(!yaml.contains("managedFields"))
        #expect(yaml.contains("stopManaging: \"1\""))
        #expect(yaml.contains("deleteDbOnNotReadyNode: 60\n"))
        var expected = pair.object
        expected["metadata"] = ["name": "sample", "namespace": "default"]
        #expect(try JSONValue.parseYAML(yaml) == .object(expected))

        var ui = ConsoleState()
        ui.overlay = .describe(title: "TimesTenClassic default/sample", yaml: yaml, offset: 0)
        let grid = Fixtures.render(Fixtures.snapshot(pairs: [pair]), ui, width: width, height: height)
        let top = try #require(grid.first("TimesTenClassic default/sample"))
        #expect(grid.first("apiVersion: tenops.io/v1")?.y == top.y + 1)
        let count = yaml.split(separator: "\n").count
        #expect(grid.first("of \(count)") != nil)
        // A text longer than the window scrolls, and stops at its end.
        let long = (0..<200).map { "field\($0): value" }.joined(separator: "\n") + "\n"
        ui.overlay = .describe(title: "TimesTenClassic default/sample", yaml: long, offset: 2)
        let scrolled = Fixtures.render(Fixtures.snapshot(pairs: [pair]), ui, width: width, height: height)
        #expect(scrolled.first("field0:") == nil)
        #expect(scrolled.first("field2: value")?.y == top.y + 1)
        #expect(scrolled.first("3-\(2 + height - 4) of 200") != nil)
        ui.overlay = .describe(title: "TimesTenClassic default/sample", yaml: long, offset: 10_000)
        let end = Fixtures.render(Fixtures.snapshot(pairs: [pair]), ui, width: width, height: height)
        #expect(end.first("field199: value")?.y == height - 3)
    }

    @Test("the switchover dialog says exactly what will happen; no name to type", arguments: screenSizes)
    func switchoverDialog(width: Int, height: Int) throws {
        var ui = ConsoleState()
        ui.overlay = .dialog(ActionDialog(action: .switchover, pair: Fixtures.key))
        let grid = Fixtures.render(Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")]), ui, width: width, height: height)
        let text = try #require(Self.boxText(grid))
        #expect(text.contains(
            "Switch the active of default/sample from sample-0 to sample-1: fence sample-0, wait for sample-1 to replay, promote "
                + "sample-1, re-attach sample-0 as standby. No acknowledged commit is lost."))
        #expect(text.contains("Enter confirms, Esc cancels."))
        #expect(!text.contains("Type the pair name"))
        #expect(grid.first("Switchover default/sample") != nil)
        // A pair that is not Normal: the dialog warns that the engine will refuse.
        let down = Fixtures.render(Fixtures.snapshot(pairs: [Fixtures.pair(state: "ActiveDown")]), ui, width: width, height: height)
        #expect(Self.boxText(down)?.contains("The pair is ActiveDown: the engine refuses a switchover unless the pair is Normal") == true)
    }

    @Test("destructive dialogs ask for the pair's name and show what is typed", arguments: [
        (ConsoleAction.failover, "Fail over default/sample now: promote sample-1 at once"),
        (.reduplicate(pod: "sample-1"), "Throw away the database of sample-1 and copy it again, whole, from the active sample-0."),
        (.nodeDown(node: "node-a", mode: "poweroff"), "Power off node node-a: every process on it is killed"),
        (.nodeDown(node: "node-b", mode: "partition"), "Cut node node-b off the network"),
    ])
    func destructiveDialog(action: ConsoleAction, sentence: String) throws {
        for (width, height) in Self.screenSizes {
            var dialog = ActionDialog(action: action, pair: Fixtures.key)
            var ui = ConsoleState()
            ui.overlay = .dialog(dialog)
            let snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: "Normal")], local: true)
            let grid = Fixtures.render(snapshot, ui, width: width, height: height)
            let text = try #require(Self.boxText(grid))
            #expect(text.contains(sentence), "\(text)")
            #expect(text.contains("Type the pair name to confirm: ______"))
            dialog.typed = "sam"
            ui.overlay = .dialog(dialog)
            let typed = try #require(Self.boxText(Fixtures.render(snapshot, ui, width: width, height: height)))
            #expect(typed.contains("Type the pair name to confirm: sam___"))
            #expect(grid.lines[height - 2].contains("type sample"))
        }
    }

    @Test("other dialogs: reexamine, stopManaging, node up, failover under TWOSAFE")
    func otherDialogs() throws {
        let snapshot = Fixtures.snapshot(pairs: [Fixtures.pair(state: "ManualInterventionRequired")], local: true)
        let texts: [(ConsoleAction, String)] = [
            (.reexamine, "Set spec.ttspec.reexamine of default/sample to a new value"),
            (.stopManaging, "the engine stops repairing the pair and it goes to ManualInterventionRequired"),
            (.nodeUp(node: "node-a"), "End the simulated failure of node node-a"),
            (.failover, "With RETURN TWOSAFE no acknowledged commit is lost."),
            (.nodeDown(node: "node-a", mode: "poweroff"), "Pods on it: sample-0 (ACTIVE). deleteDbOnNotReadyNode is 60s"),
        ]
        for (action, sentence) in texts {
            var ui = ConsoleState()
            ui.overlay = .dialog(ActionDialog(action: action, pair: Fixtures.key))
            let text = try #require(Self.boxText(Fixtures.render(snapshot, ui)))
            #expect(text.contains(sentence), "\(text)")
        }
    }

    @Test("after Enter the dialog shows progress from status.lastAction, with a bar, then the result", arguments: screenSizes)
    func progressAndResult(width: Int, height: Int) throws {
        var pair = Fixtures.pair(state: "StandbyDown")
        var record = ActionRecord(id: "a1b2")
        record.verb = "reduplicate"
        record.pod = "sample-1"
        record.state = ActionState.running
        record.phase = "copying"
        record.message = "copying sample-1 again from sample-0"
        record.bytesDone = 3 * 1024 * 1024
        record.bytesTotal = 12 * 1024 * 1024
        pair.lastAction = record
        var dialog = ActionDialog(action: .reduplicate(pod: "sample-1"), pair: Fixtures.key)
        dialog.requested = true
        var ui = ConsoleState()
        ui.overlay = .dialog(dialog)
        let snapshot = Fixtures.snapshot(pairs: [pair])
        let requested = try #require(Self.boxText(Fixtures.render(snapshot, ui, width: width, height: height)))
        #expect(requested.contains("Submitting…"))

        dialog.phase = .submitted(id: "a1b2")
        ui.overlay = .dialog(dialog)
        let grid = Fixtures.render(snapshot, ui, width: width, height: height)
        let text = try #require(Self.boxText(grid))
        #expect(text.contains("Submitted as action a1b2."))
        #expect(text.contains("reduplicate a1b2: Running (copying)"))
        #expect(text.contains("copying sample-1 again from sample-0"))
        let bar = try #require(grid.first("███████░"))
        #expect(grid.lines[bar.y].contains("░ 25% 3 MiB / 12 MiB"))
        #expect(grid[bar.x, bar.y].role == .bar)
        #expect(text.contains("Esc closes this window; the action goes on."))

        // Another id in lastAction: still waiting for the engine.
        dialog.phase = .submitted(id: "zz99")
        ui.overlay = .dialog(dialog)
        #expect(Self.boxText(Fixtures.render(snapshot, ui, width: width, height: height))?.contains("Waiting for the engine to take it up") == true)

        dialog.phase = .finished(succeeded: true, message: "sample-1 was copied again from sample-0")
        ui.overlay = .dialog(dialog)
        let finished = Fixtures.render(snapshot, ui, width: width, height: height)
        let done = try #require(Self.boxText(finished))
        #expect(done.contains("Succeeded sample-1 was copied again from sample-0 Enter or Esc closes."))
        #expect(finished[finished.first("Succeeded")!.x, finished.first("Succeeded")!.y].role == .ok)
        dialog.phase = .finished(succeeded: false, message: "refused: sample-1 is the active")
        ui.overlay = .dialog(dialog)
        let failed = Fixtures.render(snapshot, ui, width: width, height: height)
        #expect(failed[failed.first("Failed")!.x, failed.first("Failed")!.y].role == .error)
    }

    @Test("overlays at tiny sizes draw what fits and never crash", arguments: [(20, 5), (10, 3), (1, 1), (0, 0), (40, 12)])
    func tinyOverlays(width: Int, height: Int) {
        let snapshot = Fixtures.listSnapshot(local: true)
        let overlays: [ConsoleState.Overlay] = [
            .help, .describe(title: "TimesTenClassic default/sample", yaml: "a: 1\nb: 2\n", offset: 5),
            .dialog(ActionDialog(action: .failover, pair: Fixtures.key)),
        ]
        for overlay in overlays {
            var ui = ConsoleState()
            ui.overlay = overlay
            let grid = Fixtures.render(snapshot, ui, width: width, height: height)
            #expect(grid.cells.count == width * height)
            #expect(grid.allOneColumn)
        }
    }

    @Test("word wrapping keeps words whole and cuts only words longer than a line", arguments: [
        ("one two three", 7, ["one two", "three"]),
        ("abcdefghij xy", 4, ["abcd", "efgh", "ij", "xy"]),
        ("  spaced   out  ", 20, ["spaced out"]),
        ("", 5, []),
        ("word", 0, []),
    ])
    func wrap(text: String, width: Int, expected: [String]) {
        #expect(ActionText.wrap(text, width: width) == expected)
    }
}
