import ShmIPC

/// Sharing data: the square-list program (a copy, then Value and Array), a Queue with a
/// sentinel, a Pipe.
enum SharingExamples {
    /// Each process has its own copy of a global (the tutorial's `result = []`).
    nonisolated(unsafe) static var result: [Int] = []

    static let squareList = Entry("square-list") { (list: [Int]) in
        for number in list { result.append(number * number) }
        say("Result(in process p1): \(result)")
    }

    static let squareListShared = Entry("square-list-shared") { (list: [Int], context: ChildContext) in
        let result = try SharedArray<Int32>(inheriting: context.descriptors[0], count: list.count)
        let squareSum = try Value<Int32>(inheriting: context.descriptors[1])
        for (index, number) in list.enumerated() { result[index] = Int32(number * number) }
        squareSum.value = result[0..<list.count].reduce(0, +)
        say("Result(in process p1): \(result[0..<list.count])")
        say("Sum of squares(in process p1): \(squareSum.value)")
    }

    static let produce = Entry("produce") { (items: [String], context: ChildContext) in
        let queue = try MessageQueue(inheriting: context.descriptors[0])
        for item in items {
            try queue.put(Optional(item))
            say("produced \(item)")
        }
        try queue.put(Optional<String>.none)  // the sentinel
    }

    static let send = Entry("send") { (messages: [String], context: ChildContext) in
        let connection = try Pipe(inheriting: context.descriptors[0]).connection(.second)
        for message in messages { try connection.send(message) }
        try connection.send("END")
    }

    static let entries: [any EntryPoint] = [squareList, squareListShared, produce, send]

    static let examples: [Example] = [
        Example(name: "square-list", summary: "a global list filled in a child stays empty in the parent") {
            let p1 = try Process(squareList, argument: [1, 2, 3, 4])
            try p1.start()
            p1.join()
            say("Result(in main program): \(result)")
        },
        Example(name: "square-list-shared", summary: "the same with Array('i', 4) and Value('i')") {
            let list = [1, 2, 3, 4]
            let result = try SharedArray<Int32>(count: list.count, repeating: 0)
            let squareSum = try Value<Int32>(0)
            let p1 = try Process(
                squareListShared, argument: list, sharing: [result.inheritableDescriptor!, squareSum.inheritableDescriptor!])
            try p1.start()
            p1.join()
            say("Result(in main program): \(result[0..<list.count])")
            say("Sum of squares(in main program): \(squareSum.value)")
        },
        Example(name: "queue", summary: "a producer puts items and None; the consumer stops at the sentinel") {
            let queue = try MessageQueue()
            let producer = try Process(produce, argument: ["a", "b", "c"], sharing: [queue.inheritableDescriptor!])
            try producer.start()
            while let item = try queue.get(as: String?.self, timeout: .seconds(60)) { say("consumed \(item)") }
            producer.join()
            say("done")
        },
        Example(name: "pipe", summary: "parent_conn, child_conn = Pipe(); the child sends, the parent receives") {
            let pipe = try Pipe()
            let connection = try pipe.connection(.first)
            let sender = try Process(send, argument: ["hello", "world"], sharing: [pipe.inheritableDescriptor!])
            try sender.start()
            while true {
                let message = try connection.receive(as: String.self, timeout: .seconds(60))
                if message == "END" { break }
                say("received \(message)")
            }
            sender.join()
        },
    ]
}
