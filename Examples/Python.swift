import Glibc

/// A Python value as the tutorials' programs use them: the keys and values of a dictionary of
/// mixed types (`{6: '1', '2': 2, 0.25: None}`), keyword arguments (`{'isalive': False}`).
/// `description` is Python's `repr`, so printing one prints what Python prints.
enum PyValue: Hashable, Codable, Sendable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case str(String)
    case bool(Bool)
    /// Python's `None` (capitalised, as Python spells it, and so that it is never mistaken
    /// for `Optional.none`).
    case None

    var description: String {
        switch self {
        case .int(let value): "\(value)"
        case .float(let value): "\(value)"  // Swift and Python print 0.25 and 1.0 alike
        case .str(let value): "'\(value)'"
        case .bool(let value): value ? "True" : "False"
        case .None: "None"
        }
    }
}

/// Python's `repr` of a dictionary: `{k: v, k: v}`, in the order given.
func pythonRepr(_ entries: some Sequence<(key: PyValue, value: PyValue)>) -> String {
    "{" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
}

/// Python's `time.ctime()`: "Thu Mar 21 13:54:26 2019", local time.
func ctime() -> String {
    var now = time(nil)
    var buffer = [CChar](repeating: 0, count: 32)
    _ = ctime_r(&now, &buffer)
    let bytes = buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// A JSON document, as Python's `json` module reads one.
enum JSONValue: Codable, Sendable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .int(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .object(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    /// Python's `json.dumps(value, indent=4, sort_keys=True, ensure_ascii=False)`.
    func pythonDumps(indent: Int = 4, level: Int = 0) -> String {
        let inner = String(repeating: " ", count: indent * (level + 1)), outer = String(repeating: " ", count: indent * level)
        switch self {
        case .object(let members):
            guard !members.isEmpty else { return "{}" }
            let lines = members.sorted { $0.key < $1.key }.map {
                inner + JSONValue.string($0.key).pythonDumps() + ": " + $0.value.pythonDumps(indent: indent, level: level + 1)
            }
            return "{\n" + lines.joined(separator: ",\n") + "\n" + outer + "}"
        case .array(let elements):
            guard !elements.isEmpty else { return "[]" }
            let lines = elements.map { inner + $0.pythonDumps(indent: indent, level: level + 1) }
            return "[\n" + lines.joined(separator: ",\n") + "\n" + outer + "]"
        case .string(let value):
            var escaped = "\""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\r": escaped += "\\r"
                case "\t": escaped += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return escaped + "\""
        case .int(let value): return "\(value)"
        case .double(let value): return "\(value)"
        case .bool(let value): return value ? "true" : "false"
        case .null: return "null"
        }
    }
}
