import Glibc
import ShmIPC

/// Synchronization: an Event, a Semaphore, a Condition, a Barrier.
enum SyncExamples {
    static let waitForEvent = Entry("wait-for-event") { (_: Int, context: ChildContext) in
        let event = try Event(inheriting: context.descriptors[0])
        say("waiting for the event")
        say(event.wait(timeout: .seconds(60)) ? "the event is set" : "timed out")
    }

    /// Holds one of the semaphore's units while it works; tracks how many work at once.
    static let limited = Entry("limited") { (_: Int, context: ChildContext) in
        let semaphore = try Semaphore(inheriting: context.descriptors[0])
        let active = try Value<Int>(inheriting: context.descriptors[1])
        let most = try Value<Int>(inheriting: context.descriptors[2])
        try semaphore.acquire(timeout: .seconds(60))
        let now = active.add(1) + 1
        _ = try most.withLock { value in value = max(value, now) }
        say("\(Multiprocessing.currentProcess.name) working")
        usleep(50_000)
        active.subtract(1)
        try semaphore.release()
    }

    static let waitForReady = Entry("wait-for-ready") { (_: Int, context: ChildContext) in
        let condition = try Condition(inheriting: context.descriptors[0])
        let ready = try Value<Bool>(inheriting: context.descriptors[1])
        let woken = try condition.withLock { try condition.wait(for: { ready.value }, timeout: .seconds(60)) }
        say(woken ? "consumer: the item is ready" : "consumer: timed out")
    }

    static let meet = Entry("meet") { (_: Int, context: ChildContext) in
        let barrier = try Barrier(inheriting: context.descriptors[0], parties: 3)
        say("\(Multiprocessing.currentProcess.name) waiting")
        _ = try barrier.wait(timeout: .seconds(60))
        say("\(Multiprocessing.currentProcess.name) passed")
    }

    static let entries: [any EntryPoint] = [waitForEvent, limited, waitForReady, meet]

    static let examples: [Example] = [
        Example(name: "event", summary: "a child waits until the parent sets an Event") {
            let event = try Event()
            let p = try Process(waitForEvent, argument: 0, sharing: [event.inheritableDescriptor!])
            try p.start()
            say("setting the event")
            event.set()
            p.join()
        },
        Example(name: "semaphore", summary: "Semaphore(2): four processes, at most two working at a time") {
            let semaphore = try Semaphore(value: 2)
            let active = try Value<Int>(0), most = try Value<Int>(0)
            let sharing = [semaphore.inheritableDescriptor!, active.inheritableDescriptor!, most.inheritableDescriptor!]
            let processes = try (0..<4).map { try Process(limited, argument: $0, sharing: sharing) }
            for p in processes { try p.start() }
            for p in processes { p.join() }
            say("at most \(most.value) at a time")
        },
        Example(name: "condition", summary: "a consumer waits on a Condition until the producer notifies") {
            let condition = try Condition()
            let ready = try Value<Bool>(false)
            let consumer = try Process(waitForReady, argument: 0, sharing: [condition.inheritableDescriptor!, ready.inheritableDescriptor!])
            try consumer.start()
            usleep(50_000)
            try condition.withLock {
                ready.value = true
                try condition.notifyAll()
            }
            say("producer: notified")
            consumer.join()
        },
        Example(name: "barrier", summary: "Barrier(3): three processes wait for each other, then pass") {
            let barrier = try Barrier(parties: 3)
            let processes = try (0..<3).map { try Process(meet, argument: $0, sharing: [barrier.inheritableDescriptor!]) }
            for p in processes { try p.start() }
            for p in processes { p.join() }
        },
    ]
}
