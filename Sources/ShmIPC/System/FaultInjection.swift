#if DEBUG
internal import Synchronization
package import SystemPackage

/// Fault injection for the system layer, in debug builds only (swift-system's mocking idea).
///
/// A test installs a plan for the task it runs in: `FaultInjection.$plan.withValue(plan) { … }`.
/// Every call through ``valueOrErrno(_:_:)`` in that task first asks the plan whether to fail
/// with a forced errno instead of reaching the kernel. Task-local, so tests running in
/// parallel, other threads and other processes are unaffected.
package enum FaultInjection {
    @TaskLocal package static var plan: FaultPlan?

    @inline(__always)
    static func forcedError(for name: SyscallName) -> Errno? {
        guard let plan else { return nil }
        return plan.next(for: name)
    }
}

/// Which errors to force, in order, per system call; and how often each call was attempted.
/// `@unchecked Sendable` is not needed: all state sits behind a `Mutex`.
package final class FaultPlan: Sendable {
    private struct State {
        var pending: [SyscallName: [Errno]] = [:]
        var attempts: [SyscallName: Int] = [:]
    }
    private let state = Mutex(State())

    package init() {}

    /// Forces the next attempts of `name` to fail with `errors`, one per attempt, in order.
    package func fail(_ name: SyscallName, with errors: Errno...) {
        state.withLock { $0.pending[name, default: []].append(contentsOf: errors) }
    }

    /// How many times `name` was attempted (forced failures included) under this plan.
    package func attempts(_ name: SyscallName) -> Int {
        state.withLock { $0.attempts[name, default: 0] }
    }

    fileprivate func next(for name: SyscallName) -> Errno? {
        state.withLock { state in
            state.attempts[name, default: 0] += 1
            guard var queue = state.pending[name], !queue.isEmpty else { return nil }
            let error = queue.removeFirst()
            state.pending[name] = queue
            return error
        }
    }
}
#endif
