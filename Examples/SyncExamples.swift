import ShmIPC

/// Synchronization: a Lock serialising prints, an Event.
enum SyncExamples {
    static let printUnderLock = Entry("print-under-lock") { (number: Int, context: ChildContext) in
        let lock = try Lock(inheriting: context.descriptors[0])
        try lock.withLock { say("hello world \(number)") }
    }

    static let waitForEvent = Entry("wait-for-event") { (_: Int, context: ChildContext) in
        let event = try Event(inheriting: context.descriptors[0])
        say("waiting for the event")
        say(event.wait(timeout: .seconds(60)) ? "the event is set" : "timed out")
    }

    static let entries: [any EntryPoint] = [printUnderLock, waitForEvent]

    static let examples: [Example] = [
        Example(name: "lock", summary: "ten processes print one at a time under a Lock") {
            let lock = try Lock()
            let processes = try (0..<10).map { try Process(printUnderLock, argument: $0, sharing: [lock.inheritableDescriptor!]) }
            for p in processes { try p.start() }
            for p in processes { p.join() }
        },
        Example(name: "event", summary: "a child waits until the parent sets an Event") {
            let event = try Event()
            let p = try Process(waitForEvent, argument: 0, sharing: [event.inheritableDescriptor!])
            try p.start()
            say("setting the event")
            event.set()
            p.join()
        },
    ]
}
