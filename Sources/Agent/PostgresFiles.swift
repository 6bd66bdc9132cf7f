import Foundation

/// The `adminUser` file: one line `user/password`.
struct AdminUser: Sendable, Equatable {
    var user: String
    var password: String

    /// Parses the file's text. The password is never part of an error message.
    static func parse(_ text: String, file: String) throws(EngineError) -> AdminUser {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard lines.count == 1, let slash = lines[0].firstIndex(of: "/") else {
            throw EngineError(.badRequest, "\(file): expected one line of the form user/password")
        }
        let user = String(lines[0][..<slash])
        let password = String(lines[0][lines[0].index(after: slash)...])
        guard SQL.isPlainIdentifier(user) else {
            throw EngineError(.badRequest, "\(file): the user name must be 1 to 63 characters of letters, digits and _, not starting with a digit; got \(user.debugDescription)")
        }
        guard !["postgres", SQL.replicationUser].contains(user.lowercased()) else {
            throw EngineError(.badRequest, "\(file): the user name \(user) is reserved for the agent")
        }
        guard !password.isEmpty, password.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw EngineError(.badRequest, "\(file): the password must be non-empty and contain no control characters")
        }
        return AdminUser(user: user, password: password)
    }

    static func read(_ path: String) throws(EngineError) -> AdminUser {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw EngineError(.badRequest, "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }
}

/// SQL text helpers. Values are always passed as literals built here, never spliced raw.
enum SQL {
    static let replicationUser = "tenops_repl"
    static let slotName = "tenops_standby"
    static let applicationName = "tenops_standby"

    static func literal(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "'", with: "''") + "'"
    }

    static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 63, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
    }
}

/// One `key = value` setting for postgresql.conf.
struct ConfSetting: Sendable, Equatable {
    var key: String
    var value: String

    var line: String { "\(key) = \(SQL.literal(value).replacingOccurrences(of: "\\", with: "\\\\"))" }
}

/// The settings PostgreSQL knows, from `postgres --describe-config`, for validating db.ini.
struct SettingsCatalog: Sendable {
    struct Entry: Sendable { var type: String; var min: Double?; var max: Double? }
    var entries: [String: Entry]

    /// Parses the tab-separated output: name, context, group, type, reset value, min, max, ...
    init(describeConfigOutput: String) {
        var entries: [String: Entry] = [:]
        for line in describeConfigOutput.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 7 else { continue }
            entries[fields[0].lowercased()] = Entry(type: fields[3], min: Double(fields[5]), max: Double(fields[6]))
        }
        self.entries = entries
    }

    /// Settings the agent owns: db.ini may not set them.
    static let reserved: Set<String> = [
        "listen_addresses", "port", "unix_socket_directories", "data_directory", "config_file", "hba_file",
        "ident_file", "external_pid_file", "primary_conninfo", "primary_slot_name", "synchronous_standby_names",
        "synchronous_commit", "default_transaction_read_only", "hot_standby", "wal_level", "logging_collector",
        "log_destination", "log_directory", "log_filename", "include", "include_if_exists", "include_dir",
        "promote_trigger_file", "recovery_target", "recovery_target_action", "restore_command",
    ]
}

/// db.ini: `key=value` lines that go into postgresql.conf. Blank lines and lines starting with
/// `#` or `;` are comments. A value may be quoted with single quotes.
enum DbIni {
    static func parse(_ text: String, file: String, catalog: SettingsCatalog) throws(EngineError) -> [ConfSetting] {
        var settings: [ConfSetting] = []
        var seen: Set<String> = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let where_ = "\(file) line \(index + 1)"
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw EngineError(.badRequest, "\(where_): expected key=value, got \(line.debugDescription)")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("'"), value.hasSuffix("'") {
                value = String(value.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")
            }
            guard !key.isEmpty, key.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == ".") }) else {
                throw EngineError(.badRequest, "\(where_): invalid setting name \(key.debugDescription)")
            }
            guard !SettingsCatalog.reserved.contains(key) else {
                throw EngineError(.badRequest, "\(where_): \(key) is managed by the agent and cannot be set in db.ini")
            }
            guard let entry = catalog.entries[key] else {
                throw EngineError(.badRequest, "\(where_): unknown PostgreSQL setting \(key.debugDescription)")
            }
            guard value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw EngineError(.badRequest, "\(where_): the value of \(key) contains control characters")
            }
            guard !seen.contains(key) else { throw EngineError(.badRequest, "\(where_): \(key) is set twice") }
            seen.insert(key)
            try check(value, of: key, entry: entry, where_: where_)
            settings.append(ConfSetting(key: key, value: value))
        }
        return settings
    }

    private static func check(_ value: String, of key: String, entry: SettingsCatalog.Entry, where_: String) throws(EngineError) {
        switch entry.type {
        case "BOOLEAN":
            let allowed = ["on", "off", "true", "false", "yes", "no", "1", "0", "t", "f", "y", "n"]
            guard allowed.contains(value.lowercased()) else {
                throw EngineError(.badRequest, "\(where_): \(key) takes a boolean (on/off), got \(value.debugDescription)")
            }
        case "INTEGER", "REAL":
            // A number with an optional unit (128MB, 30s); PostgreSQL itself checks the unit and range.
            let number = value.prefix { $0.isNumber || $0 == "-" || $0 == "." || $0 == "+" || $0 == "e" || $0 == "E" }
            let unit = value.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
            let units: Set<String> = ["", "B", "kB", "MB", "GB", "TB", "us", "ms", "s", "min", "h", "d"]
            guard let parsed = Double(number), units.contains(unit) else {
                throw EngineError(.badRequest, "\(where_): \(key) takes a number with an optional unit, got \(value.debugDescription)")
            }
            if unit.isEmpty, let min = entry.min, let max = entry.max, parsed < min || parsed > max {
                throw EngineError(.badRequest, "\(where_): \(key) must be between \(min) and \(max), got \(value)")
            }
        default:
            break
        }
    }
}

/// Files the agent writes into the data directory and next to it.
enum PostgresFiles {
    static let dbIniConf = "tenops-dbini.conf"
    static let agentConf = "tenops-agent.conf"
    static let repSchemeFile = "tenops-repscheme.json"
    static let appliedFile = "tenops-applied.json"

    static let includeLines = """

        # Added by the tenops agent: db.ini settings, then the agent's own (which win).
        include_if_exists '\(dbIniConf)'
        include_if_exists '\(agentConf)'

        """

    /// The agent-owned settings, rewritten before every start and on every change.
    static func agentConf(
        twosafe: Bool, fenced: Bool, primaryConninfo: String?
    ) -> String {
        var settings: [ConfSetting] = [
            ConfSetting(key: "wal_level", value: "replica"),
            // pg_rewind needs it to re-attach a former active without a full copy.
            ConfSetting(key: "wal_log_hints", value: "on"),
            // ... and the WAL back to the last checkpoint before the two diverged.
            ConfSetting(key: "wal_keep_size", value: "256MB"),
            ConfSetting(key: "hot_standby", value: "on"),
            ConfSetting(key: "logging_collector", value: "off"),
            ConfSetting(key: "log_destination", value: "stderr"),
            ConfSetting(key: "synchronous_standby_names", value: twosafe ? "*" : ""),
            ConfSetting(key: "synchronous_commit", value: twosafe ? "remote_apply" : "on"),
            ConfSetting(key: "default_transaction_read_only", value: fenced ? "on" : "off"),
            ConfSetting(key: "primary_conninfo", value: primaryConninfo ?? ""),
            ConfSetting(key: "primary_slot_name", value: primaryConninfo == nil ? "" : SQL.slotName),
        ]
        settings.sort { $0.key < $1.key }
        return "# Managed by the tenops agent; rewritten on every start and change. Do not edit.\n"
            + settings.map(\.line).joined(separator: "\n") + "\n"
    }

    static func dbIniConf(_ settings: [ConfSetting]) -> String {
        "# From /ttconfig/db.ini, written by the tenops agent at createDb.\n"
            + settings.map(\.line).joined(separator: "\n") + "\n"
    }

    /// pg_hba.conf: the server user locally by peer, everyone else by password; replication only
    /// for the replication user from the pair's addresses.
    static func hba(superuser: String, replicationPeers: [String]) -> String {
        var lines = [
            "# Managed by the tenops agent. Do not edit.",
            "# TYPE  DATABASE     USER                      ADDRESS                 METHOD",
            "local   all          \(superuser)              peer map=tenops",
            "local   all          all                       scram-sha-256",
        ]
        var ranges = replicationPeers.map(cidr)
        // On loopback (local mode) every connection comes from 127.0.0.1, whatever address the
        // peer listens on: let that source in too. The password still guards it.
        if replicationPeers.contains(where: { $0.hasPrefix("127.") }) && !ranges.contains("127.0.0.1/32") {
            ranges.append("127.0.0.1/32")
        }
        for range in ranges {
            lines.append("host    replication  \(SQL.replicationUser)  \(range)  scram-sha-256")
        }
        lines.append("host    all          all                       0.0.0.0/0               scram-sha-256")
        lines.append("host    all          all                       ::/0                    scram-sha-256")
        return lines.joined(separator: "\n") + "\n"
    }

    /// pg_ident.conf: the agent's OS user (root, in a container) and the server user may both
    /// connect as the superuser over the Unix socket.
    static func ident(superuser: String, agentUser: String) -> String {
        var lines = ["# Managed by the tenops agent. Do not edit.", "tenops  \(superuser)  \(superuser)"]
        if agentUser != superuser { lines.append("tenops  \(agentUser)  \(superuser)") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func cidr(_ address: String) -> String {
        if address.contains("/") { return address }
        return address.contains(":") ? "\(address)/128" : "\(address)/32"
    }

    /// True for an IP address or a CIDR range.
    static func isAddressOrRange(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, AgentConfiguration.isIPAddress(String(parts[0])) else { return false }
        if parts.count == 2 {
            guard let bits = Int(parts[1]) else { return false }
            return bits >= 0 && bits <= (parts[0].contains(":") ? 128 : 32)
        }
        return true
    }

    /// A host name or IP address fit for a connection string.
    static func isValidHost(_ host: String) -> Bool {
        if AgentConfiguration.isIPAddress(host) { return true }
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        return host.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == ".") }
    }

    /// A libpq connection-string value, quoted.
    static func conninfoValue(_ value: String) -> String {
        "'" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// A .pgpass line for the replication user.
    static func pgpassLine(password: String) -> String {
        let escaped = password.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: ":", with: "\\:")
        return "*:*:*:\(SQL.replicationUser):\(escaped)\n"
    }

    /// The "Latest checkpoint location" of pg_controldata's output when the cluster state says it
    /// was shut down cleanly (not "shut down in recovery", not "in production" after a crash).
    static func shutdownCheckpoint(controlData: String) -> String? {
        var state: String?
        var location: String?
        for line in controlData.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if key == "Database cluster state" { state = value }
            if key == "Latest checkpoint location" { location = value }
        }
        guard state == "shut down", let location, location.contains("/") else { return nil }
        return location
    }

    /// postgresql.auto.conf without the lines pg_basebackup -R wrote (the agent sets them itself).
    static func strippingStandbySettings(_ autoConf: String) -> String {
        autoConf.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            let key = line.trimmingCharacters(in: .whitespaces).prefix { $0 != "=" && $0 != " " }.lowercased()
            return key != "primary_conninfo" && key != "primary_slot_name"
        }.joined(separator: "\n")
    }
}
