internal import Atomics
internal import CShim

/// A ``JoinableQueue``'s count of unfinished tasks, in the queue's control block: a parking
/// word (`unfinished`, its waiters `join_waiters`) that `join()` sleeps on until it reads 0.
/// ``MPMCControl`` uses it too: an item given up ends its task.
struct TaskCount {
    let word: ParkingWord

    init(_ state: UnsafeMutablePointer<shmipc_queue_state>) {
        word = ParkingWord(state, offset: MemoryLayout<shmipc_queue_state>.offset(of: \.unfinished)!)
    }

    /// Unfinished tasks (a snapshot).
    var value: Int { Int(word.value.load(ordering: .relaxed)) }  // relaxed: a snapshot

    /// One more task, counted before its item is published (the slot's release store orders
    /// it), so a consumer's `taskDone()` never sees the count below its own task.
    func add() { word.value.wrappingIncrement(ordering: .relaxed) }

    /// One task fewer; false if none was unfinished. Wakes the joiners when it reaches 0.
    @discardableResult
    func finish() -> Bool {
        var current = word.value.load(ordering: .relaxed)
        while true {
            if current == 0 { return false }
            // Sequentially consistent: the parking word's Dekker pair with join(), and the
            // release that lets a joiner see the task's effects.
            let (exchanged, original) = word.value.weakCompareExchange(
                expected: current, desired: current - 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            current = original
        }
        if current == 1 { word.wakeIfParked() }
        return true
    }

    /// Waits until the count reads 0 or `deadline` passes; whether it did.
    func join(deadline: Deadline) -> Bool {
        while true {
            if word.value.load(ordering: .sequentiallyConsistent) == 0 { return true }  // acquire: the tasks' effects
            if deadline.hasPassed { return false }
            word.park(deadline: deadline) { $0 == 0 }
        }
    }
}
