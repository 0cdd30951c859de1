import Glibc
import Logging
@testable import ShmIPC
import Synchronization
import Testing

extension ShmIPCTests {
    /// Recoveries reach the application's logger (and only if it set one).
    @Suite(.serialized) struct RecoveryLoggingTests {
        /// A log handler that keeps what it is given.
        struct Capture: LogHandler {
            let records: Records
            var logLevel: Logger.Level = .trace
            var metadata: Logger.Metadata = [:]
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                records.append((event.level, "\(event.message)", event.metadata ?? [:]))
            }
        }

        final class Records: Sendable {
            private let storage = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
            func append(_ record: (Logger.Level, String, Logger.Metadata)) { storage.withLock { $0.append(record) } }
            var all: [(Logger.Level, String, Logger.Metadata)] { storage.withLock { $0 } }
        }

        @Test func aLockTakenOverFromADeadOwnerIsLoggedAsAWarning() throws {
            #expect(ShmIPCLogging.logger.handler is SwiftLogNoOpLogHandler, "silent unless the application sets a logger")
            let records = Records()
            let previous = ShmIPCLogging.logger
            ShmIPCLogging.logger = Logger(label: "test") { _ in Capture(records: records) }
            defer { ShmIPCLogging.logger = previous }

            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let lock = try Lock(name: name, mode: .createExclusive)
            let holder = try Helper.start("lock-hold", ["lock", name.rawValue])
            try #require(Helper.waitForOutput(holder, containing: "holding"), "\(holder.output)")
            holder.kill()
            #expect(try lock.acquire(timeout: .seconds(60)) == .previousOwnerDied)
            try lock.markConsistent()
            try lock.release()
            #expect(SegmentInspector.report(name.rawValue)?.counters["ownerDiedRecoveries"] == 1, "the take-over is counted")
            let takeOvers = records.all.filter { $0.2["deadOwner"] == "\(holder.pid)" }
            #expect(takeOvers.count == 1, "\(records.all)")
            #expect(takeOvers.first?.0 == .warning && takeOvers.first?.1.contains("owner died") == true, "\(takeOvers)")
            try lock.unlink()
        }
    }
}
