import ShmIPC

/// Sharing data: the square-list program (a copy, then Value and Array), a Queue with a
/// sentinel, a Pipe, and an object holding a lock. Shared objects travel inside a target's
/// arguments, as in Python: the child attaches the same objects.
enum SharingExamples {
    /// Each process has its own copy of a global (the tutorial's `result = []`).
    nonisolated(unsafe) static var result: [Int] = []

    static let squareList = Entry("square-list") { (list: [Int]) in
        for number in list { result.append(number * number) }
        say("Result(in process p1): \(result)")
    }

    /// Python: `args=(mylist, result, square_sum)`.
    struct SquareJob: Codable {
        var list: [Int]
        var result: SharedArray<Int32>
        var squareSum: Value<Int32>
    }

    static let squareListShared = Entry("square-list-shared") { (job: SquareJob) in
        for (index, number) in job.list.enumerated() { job.result[index] = Int32(number * number) }
        job.squareSum.value = job.result[0..<job.list.count].reduce(0, +)
        say("Result(in process p1): \(job.result[0..<job.list.count])")
        say("Sum of squares(in process p1): \(job.squareSum.value)")
    }

    static let produce = Entry("produce") { (items: [String], queue: MessageQueue) in
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

    /// The tutorial's `Account`: a balance and the RLock guarding it, passed to each child
    /// in one step. `transfer` holds the lock and calls `deposit`, which takes it again.
    struct Account: Codable {
        let balance: Value<Int>
        let lock: RLock

        init(balance: Int) throws {
            self.balance = try Value(balance)
            lock = try RLock()
        }

        func deposit(_ amount: Int) throws {
            try lock.withLock { balance.value += amount }
        }

        func withdraw(_ amount: Int) throws {
            try lock.withLock {
                guard balance.value >= amount else { return }
                try deposit(-amount)  // re-entered: an RLock
            }
        }
    }

    static let depositMany = Entry("deposit-many") { (account: Account, times: Int) in
        for _ in 0..<times { try account.deposit(1) }
    }

    static let withdrawMany = Entry("withdraw-many") { (account: Account, times: Int) in
        for _ in 0..<times { try account.withdraw(1) }
    }

    static let entries: [any EntryPoint] = [squareList, squareListShared, produce, send, depositMany, withdrawMany]

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
            let p1 = try Process(squareListShared, argument: SquareJob(list: list, result: result, squareSum: squareSum))
            try p1.start()
            p1.join()
            say("Result(in main program): \(result[0..<list.count])")
            say("Sum of squares(in main program): \(squareSum.value)")
        },
        Example(name: "queue", summary: "a producer puts items and None; the consumer stops at the sentinel") {
            let queue = try MessageQueue()
            let producer = try Process(produce, arguments: (["a", "b", "c"], queue))
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
        Example(name: "account", summary: "an Account holding a Value and an RLock, passed to two processes") {
            let account = try Account(balance: 500)  // enough that no withdrawal is refused
            let depositor = try Process(depositMany, arguments: (account, 1000))
            let withdrawer = try Process(withdrawMany, arguments: (account, 500))
            try depositor.start()
            try withdrawer.start()
            depositor.join()
            withdrawer.join()
            say("Final balance: \(account.balance.value)")
        },
    ]
}
