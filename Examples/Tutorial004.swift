import ShmIPC

/// Tutorial 004 (in English): a global list is not shared, an `Array` and a `Value` are; a
/// Manager's list of records; a Queue of squares; a Pipe's sender and receiver that stop at "END".
enum Tutorial004 {
    /// Empty list with global scope: each process has its own.
    nonisolated(unsafe) static var result: [Int] = []

    // def square_list(mylist): global result; for num in mylist: result.append(num * num); print(...)
    static let squareList = Entry("t004-square-list") { (mylist: [Int]) in
        // take mylist The block of is attached to the global list result
        for num in mylist { result.append(num * num) }
        // Print global list results
        say("Result(in process p1): \(result)")
    }

    /// `square_list(mylist, result, square_sum)`'s arguments.
    struct SquareJob: Codable {
        var mylist: [Int]
        var result: SharedArray<Int32>
        var squareSum: Value<Int32>
    }

    static let squareListShared = Entry("t004-square-list-shared") { (job: SquareJob) in
        let (mylist, result, squareSum) = (job.mylist, job.result, job.squareSum)
        // take mylist To the result array
        for (idx, num) in mylist.enumerated() { result[idx] = Int32(num * num) }
        // Sum of squares
        squareSum.value = result[0..<result.count].reduce(0, +)
        say("Result(in process p1): \(result[0..<result.count])")
        say("Sum of squares(in process p1): \(squareSum.value)")
    }

    /// A record: Python's tuple `('Sam', 10)`.
    struct Record: Codable {
        var name: String
        var score: Int
        init(_ name: String, _ score: Int) {
            self.name = name
            self.score = score
        }
    }

    // def print_records(records): for record in records: print("Name: {0}\nScore: {1}\n".format(record[0], record[1]))
    static let printRecords = Entry("t004-print-records") { (records: SharedList<Record>) in
        for record in try records.snapshot() {
            say("Name: \(record.name)\nScore: \(record.score)\n")
        }
    }

    // def insert_record(record, records): records.append(record); print(" New record added !\n")
    static let insertRecord = Entry("t004-insert-record") { (record: Record, records: SharedList<Record>) in
        try records.append(record)
        say(" New record added !\n")
    }

    // def square_list(mylist, q): for num in mylist: q.put(num * num)
    static let squaresIntoQueue = Entry("t004-square-queue") { (mylist: [Int], q: Queue<Int>) in
        for num in mylist { try q.put(num * num) }
    }

    // def print_queue(q): print(" Queue element :"); while not q.empty(): print(q.get()); print(" The queue is now empty !")
    static let printQueue = Entry("t004-print-queue") { (q: Queue<Int>) in
        say(" Queue element :")
        while !q.isEmpty {
            say("\(try q.get())")
        }
        say(" The queue is now empty !")
    }

    // def sender(conn, msgs): for msg in msgs: conn.send(msg); print(" Message sent : {}".format(msg)); conn.close()
    static let sender = Entry("t004-sender") { (pipe: Pipe, msgs: [String]) in
        let conn = try pipe.connection(.first)  // parent_conn
        for msg in msgs {
            try conn.send(msg)
            say(" Message sent : \(msg)")
        }
        conn.close()
    }

    // def receiver(conn): while 1: msg = conn.recv(); if msg == "END": break; print(" Received a message : {}".format(msg))
    static let receiver = Entry("t004-receiver") { (pipe: Pipe) in
        let conn = try pipe.connection(.second)  // child_conn
        while true {
            let msg = try conn.receive(as: String.self)
            if msg == "END" { break }
            say(" Received a message : \(msg)")
        }
    }

    static let entries: [any EntryPoint] = [
        squareList, squareListShared, printRecords, insertRecord, squaresIntoQueue, printQueue, sender, receiver,
    ]

    static let group = ExampleGroup(
        title: "Tutorial 004: global data not shared, Array and Value, Manager list of records, Queue of squares, Pipe sender/receiver with \"END\"",
        examples: [
            Example(name: "t004-global", summary: "a global list filled in process p1 stays empty in the main program") {
                // Input list
                let mylist = [1, 2, 3, 4]
                let p1 = try Process(squareList, argument: mylist)
                try p1.start()
                p1.join()
                // Print the global results list
                say("Result(in main program): \(result)")
            },
            Example(name: "t004-array-value", summary: "Array('i', 4) and Value('i') passed to p1: the main program sees its squares and their sum") {
                let mylist = [1, 2, 3, 4]
                // establish int An array of data types , Among them is 4 An integer space
                let result = try SharedArray<Int32>(count: 4, repeating: 0)
                // establish int Value of data type
                let squareSum = try Value<Int32>(0)
                let p1 = try Process(squareListShared, argument: SquareJob(mylist: mylist, result: result, squareSum: squareSum))
                try p1.start()
                p1.join()
                say("Result(in main program): \(result[0..<result.count])")
                say("Sum of squares(in main program): \(squareSum.value)")
            },
            Example(name: "t004-manager-records", summary: "manager.list of (name, score) records: p1 appends ('Jeff', 8), then p2 prints every record") {
                try Manager.with { manager in
                    // Create a list in the server process memory
                    let records = try manager.list([Record("Sam", 10), Record("Adam", 9), Record("Kevin", 9)])
                    // New record to insert into the record
                    let newRecord = Record("Jeff", 8)
                    let p1 = try Process(insertRecord, arguments: (newRecord, records))
                    let p2 = try Process(printRecords, argument: records)
                    // Run the process p1 To insert a new record
                    try p1.start()
                    p1.join()
                    // Run the process p2 To print records
                    try p2.start()
                    p2.join()
                }
            },
            Example(name: "t004-queue-squares", summary: "p1 puts the squares of [1, 2, 3, 4] in a Queue; then p2 prints them until the queue is empty") {
                let mylist = [1, 2, 3, 4]
                // Create a multi process queue
                let q = try Queue<Int>(capacity: 16)
                let p1 = try Process(squaresIntoQueue, arguments: (mylist, q))
                let p2 = try Process(printQueue, argument: q)
                try p1.start()
                p1.join()
                try p2.start()
                p2.join()
            },
            Example(name: "t004-pipe-end", summary: "a sender sends [\"hello\", \"hey\", \"hru?\", \"END\"] down a Pipe; the receiver prints them until \"END\"") {
                // Message to send
                let msgs = ["hello", "hey", "hru?", "END"]
                // Create pipes
                let pipe = try Pipe()
                let p1 = try Process(sender, arguments: (pipe, msgs))  // parent_conn
                let p2 = try Process(receiver, argument: pipe)  // child_conn
                try p1.start()
                try p2.start()
                p1.join()
                p2.join()
            },
        ])
}
