internal import Synchronization

/// The entry points this program registered (``Multiprocessing/bootstrap(_:)``), by name: what
/// a child looks its entry up in. It knows no entry itself: built-in ones (the pool worker)
/// are registered by the caller like any other.
enum EntryRegistry {
    private struct State {
        var entries: [String: any EncodedEntry] = [:]
        var bootstrapped = false
    }

    private static let state = Mutex(State())

    /// Registers `entries` (replacing any of the same name). Traps on an entry that is not an
    /// ``Entry`` (a programming error).
    static func register(_ entries: [any EntryPoint]) {
        state.withLock { state in
            for entry in entries {
                guard let encoded = entry as? any EncodedEntry else {
                    preconditionFailure("ShmIPC: \(type(of: entry)) is not an Entry")
                }
                state.entries[entry.name] = encoded
            }
            state.bootstrapped = true
        }
    }

    /// The entry named `name`, for a parent about to start it: throws if `bootstrap` was not
    /// called or the name is unknown.
    static func entry(named name: String) throws(ProcessError) -> any EncodedEntry {
        let (bootstrapped, entry) = state.withLock { ($0.bootstrapped, $0.entries[name]) }
        guard bootstrapped else { throw .notBootstrapped }
        guard let entry else { throw .entryNotRegistered(name) }
        return entry
    }

    /// The entry named `name`, or nil (a child looking up what it was asked to run).
    static func lookUp(_ name: String) -> (any EncodedEntry)? { state.withLock { $0.entries[name] } }
}
