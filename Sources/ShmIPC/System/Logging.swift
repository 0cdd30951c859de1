public import Logging

/// Where ShmIPC reports what it repaired or refused: a dead lock owner taken over, an item a
/// dead peer abandoned, a pipe producer's tail recovered, a corrupted pipe, a pool worker that
/// died and was replaced, a barrier broken by a dead party, a shared structure repaired.
///
/// Silent by default: the logger's handler drops everything until you give it yours, e.g.
/// `ShmIPCLogging.logger = Logger(label: "shmipc")` after `LoggingSystem.bootstrap(…)`.
/// Levels: `warning` for a peer's death that ShmIPC repaired (data may be lost: an item, a
/// task), `error` for shared memory found corrupted, `notice` for repairs that lose nothing.
/// Only recovery paths log; no fast path looks at the logger.
public enum ShmIPCLogging {
    private static let storage = ThreadLock(Logger(label: "shmipc", factory: { _ in SwiftLogNoOpLogHandler() }))

    /// The logger ShmIPC reports through (a no-op one until set).
    public static var logger: Logger {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Logs through ``ShmIPCLogging/logger`` (for the recovery paths).
func logRecovery(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, _ metadata: Logger.Metadata = [:]) {
    ShmIPCLogging.logger.log(level: level, message(), metadata: metadata)
}
