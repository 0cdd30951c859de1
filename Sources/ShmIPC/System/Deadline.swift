#if canImport(Glibc)
package import Glibc
#endif

/// A point in time on the monotonic clock (CLOCK_MONOTONIC), the clock futex timeouts use.
///
/// Timeouts are turned into a `Deadline` once, when an operation starts; every retry after an
/// interruption or a spurious wake-up waits for the same deadline, so signals never extend it.
public struct Deadline: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since an unspecified start (boot), as `clock_gettime(CLOCK_MONOTONIC)`.
    public let uptimeNanoseconds: UInt64

    /// The instant `uptimeNanoseconds` after boot (CLOCK_MONOTONIC).
    public init(uptimeNanoseconds: UInt64) {
        self.uptimeNanoseconds = uptimeNanoseconds
    }

    /// The current time.
    public static var now: Deadline {
        var ts = Glibc.timespec()
        // CLOCK_MONOTONIC cannot fail with a valid pointer; vDSO, no syscall.
        _ = clock_gettime(CLOCK_MONOTONIC, &ts)
        return Deadline(uptimeNanoseconds: UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec))
    }

    /// A deadline that never passes.
    public static let distantFuture = Deadline(uptimeNanoseconds: .max)

    /// `duration` from now; negative durations give a deadline that has already passed,
    /// and durations past the clock's range saturate to ``distantFuture``.
    public static func after(_ duration: Duration) -> Deadline {
        now.advanced(by: duration)
    }

    /// A deadline for an optional timeout: `nil` means wait forever.
    public static func after(_ timeout: Duration?) -> Deadline {
        timeout.map { after($0) } ?? .distantFuture
    }

    /// The instant `duration` later (saturating).
    public func advanced(by duration: Duration) -> Deadline {
        if self == .distantFuture { return self }
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || attoseconds < 0 {
            let back = Self.nanoseconds(of: .zero - duration)
            return Deadline(uptimeNanoseconds: uptimeNanoseconds > back ? uptimeNanoseconds - back : 0)
        }
        let (sum, overflow) = uptimeNanoseconds.addingReportingOverflow(Self.nanoseconds(of: duration))
        return overflow ? .distantFuture : Deadline(uptimeNanoseconds: sum)
    }

    /// Whether the deadline is now or in the past.
    public var hasPassed: Bool { self != .distantFuture && Deadline.now >= self }

    /// Time left until the deadline (zero once it has passed).
    public var remaining: Duration {
        let now = Deadline.now
        guard self > now else { return .zero }
        return .nanoseconds(Int64(clamping: uptimeNanoseconds - now.uptimeNanoseconds))
    }

    /// The deadline as a `timespec` for an absolute futex timeout; nil for ``distantFuture``.
    package var timespec: Glibc.timespec? {
        if self == .distantFuture { return nil }
        let ns = uptimeNanoseconds
        let seconds = ns / 1_000_000_000
        // A timespec holds seconds in a signed 64-bit field: beyond that means "forever".
        guard seconds <= UInt64(Int.max) else { return nil }
        return Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(ns % 1_000_000_000))
    }

    /// Earlier first.
    public static func < (lhs: Deadline, rhs: Deadline) -> Bool {
        lhs.uptimeNanoseconds < rhs.uptimeNanoseconds
    }

    /// A description for people: logs and error messages.
    public var description: String {
        self == .distantFuture ? "Deadline(never)" : "Deadline(\(uptimeNanoseconds) ns)"
    }

    private static func nanoseconds(of duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        let (wholeNs, overflow) = UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (sum, overflow2) = wholeNs.addingReportingOverflow(UInt64(clamping: attoseconds / 1_000_000_000))
        return overflow2 ? .max : sum
    }
}
