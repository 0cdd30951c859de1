import ShmIPC

/// The tutorials' manager programs: a dict and a list changed by a child, a Namespace, a
/// managed Queue between a producer and a consumer.
enum ManagerExamples {
    /// Python: `def f(d, l): d[1] = '1'; d['2'] = 2; d[0.25] = None; l.reverse()`.
    static let changeDictAndList = Entry("change-dict-and-list") { (_: Int, context: ChildContext) in
        let d = try SharedDictionary<String, String?>(inheriting: context.descriptors[0])
        let l = try SharedList<Int>(inheriting: context.descriptors[1])
        d["1"] = "1"
        d["2"] = "2"
        d["0.25"] = .some(nil)  // a key whose value is None
        let reversed = try l.snapshot().reversed()
        try l.removeAll()
        try l.append(contentsOf: reversed)
    }

    /// Python: `def g(ns): ns.x += 1; ns.y = ns.y + ['from the child']`.
    static let changeNamespace = Entry("change-namespace") { (_: Int, context: ChildContext) in
        let ns = try Namespace(inheriting: context.descriptors[0])
        try ns.modify("x", as: Int.self) { $0! += 1 }
        let y: [String]? = ns.y
        ns.y = (y ?? []) + ["from the child"]
    }

    static let producer = Entry("managed-producer") { (_: Int, context: ChildContext) in
        let q = try MessageQueue(inheriting: context.descriptors[0], maxMessageSize: 4096, capacity: 5)
        for i in 0..<10 { try q.put(Optional(i)) }
        try q.put(Int?.none)
    }

    static let consumer = Entry("managed-consumer") { (_: Int, context: ChildContext) in
        let q = try MessageQueue(inheriting: context.descriptors[0], maxMessageSize: 4096, capacity: 5)
        while let item = try q.get(as: Int?.self, timeout: .seconds(60)) { say("got \(item)") }
    }

    static let entries: [any EntryPoint] = [changeDictAndList, changeNamespace, producer, consumer]

    static let examples: [Example] = [
        Example(name: "manager-dict-list", summary: "manager.dict() and manager.list() changed by a child") {
            try Manager.with { manager in
                let d: SharedDictionary<String, String?> = try manager.dict()
                let l = try manager.list(Array(0..<10))
                let p = try Process(changeDictAndList, argument: 0, sharing: [d.inheritableDescriptor!, l.inheritableDescriptor!])
                try p.start()
                p.join()
                let entries = try d.snapshot().sorted { $0.key < $1.key }.map { "\($0.key): \($0.value ?? "None")" }
                say("{\(entries.joined(separator: ", "))}")
                say("\(try l.snapshot())")
            }
        },
        Example(name: "manager-namespace", summary: "manager.Namespace(): the child increments x and extends y") {
            try Manager.with { manager in
                let ns = try manager.namespace()
                ns.x = 1
                ns.y = ["from the parent"]
                let child = try Process(changeNamespace, argument: 0, sharing: [ns.inheritableDescriptor!])
                try child.start()
                child.join()
                let x: Int? = ns.x, y: [String]? = ns.y
                say("x = \(x!), y = \(y!)")
            }
        },
        Example(name: "manager-queue", summary: "manager.Queue(5) between a producer and a consumer process") {
            try Manager.with { manager in
                let q = try manager.messageQueue(capacity: 5)
                let workers = [
                    try Process(producer, argument: 0, sharing: [q.inheritableDescriptor!]),
                    try Process(consumer, argument: 0, sharing: [q.inheritableDescriptor!]),
                ]
                for w in workers { try w.start() }
                for w in workers { w.join() }
                say("done")
            }
        },
    ]
}
