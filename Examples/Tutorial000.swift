import Glibc
import ShmIPC

/// Tutorial 000 (in English): processes and procedures, `os.fork()`, `Process`, a `Pool` with
/// keyword arguments and `terminate()`, a `Queue` between a reader and a writer, and a
/// manager's queue shared by a pool's tasks.
enum Tutorial000 {
    // def fun(): print("child pid %d" % os.getpid()); print("parent pid %d" % os.getpid())
    static let fun = Entry("t000-fun") { () in
        say("child pid \(osGetpid)")
        say("parent pid \(osGetpid)")  // the tutorial prints its own pid here too
    }

    /// `fun(name, age, **kwargs)`: Swift has no `**kwargs`; the keyword arguments travel as a
    /// dictionary beside the positional ones.
    struct FunArguments: Codable {
        var name: String
        var age: Int
        var kwargs: [String: PyValue]
    }

    // def fun(name, age, **kwargs): print("pid %d" % os.getpid()); print(name, age, kwargs); time.sleep(1)
    static let funWithKeywords = Entry("t000-fun-kwargs") { (arguments: FunArguments) in
        say("pid \(osGetpid)")
        say(arguments.name, arguments.age, pythonRepr(arguments.kwargs.sorted { $0.key < $1.key }.map { (PyValue.str($0.key), $0.value) }))
        sleep(seconds: 1)
    }

    // def fun(name, age, **kwargs): print("pid %d" % os.getpid()); time.sleep(1)
    static let funQuietly = Entry("t000-fun-quietly") { (arguments: FunArguments) in
        say("pid \(osGetpid)")
        sleep(seconds: 1)
    }

    // def read(q): while True: print("pqueue size %d" % q.qsize()); r = q.get(); print("get %d" % r); print(...)
    // (the pool's read sleeps 0.1 s after each get)
    static func read(_ q: Queue<Int>, pause: Double? = nil) throws {
        while true {
            say("pqueue size \(q.count)")
            let r = try q.get()
            say("get \(r)")
            say("pqueue size \(q.count)")
            if let pause { sleep(seconds: pause) }
        }
    }

    // def write(q): for r in range(5): q.put(r); print("put %d " % r); print("queue size %d" % q.qsize()); time.sleep(2)
    static func write(_ q: Queue<Int>) throws {
        for r in 0..<5 {
            try q.put(r)
            say("put \(r) ")
            say("queue size \(q.count)")
            sleep(seconds: 2)
        }
    }

    static let reader = Entry("t000-read") { (q: Queue<Int>) in try read(q) }
    static let writer = Entry("t000-write") { (q: Queue<Int>) in try write(q) }

    /// The pool's tasks: the manager's queue is in every worker (`Pool(sharing:)`), at
    /// `context.descriptors[0]`.
    static func managedQueue(_ context: ChildContext) throws -> Queue<Int> {
        try Queue<Int>(inheriting: context.descriptors[0], capacity: 5)
    }

    static let readInPool = Entry("t000-pool-read") { (_: NoArgument, context: ChildContext) in
        try read(managedQueue(context), pause: 0.1)
    }

    static let writeInPool = Entry("t000-pool-write") { (_: NoArgument, context: ChildContext) in
        try write(managedQueue(context))
    }

    static let entries: [any EntryPoint] = [fun, funWithKeywords, funQuietly, reader, writer, readInPool, writeInPool]

    static let group = ExampleGroup(
        title: "Tutorial 000: os.fork, Process, Pool.apply_async with kwargs, terminate, Queue reader/writer, Manager queue with a Pool",
        examples: [
            Example(name: "t000-fork", summary: "pid = os.fork(); print(\"do\"): fork returns 0 in the child, the child's pid in the parent (the parent joins the child, so every line is out before it ends)") {
                switch try Multiprocessing.fork() {
                case .child:
                    say("do")
                    say("child process pid 0")
                    exit(0)
                case .parent(let child):
                    say("do")
                    say("parent process pid \(child.pid!)")
                    child.join()
                }
            },
            Example(name: "t000-fork-getpid", summary: "the same with os.getpid() and os.getppid() on each side; the parent joins the child") {
                switch try Multiprocessing.fork() {
                case .child:
                    say("do")
                    say("current child process pid \(osGetpid) parent pid \(osGetppid)")
                    exit(0)
                case .parent(let child):
                    say("do")
                    say("current parent process pid \(osGetpid) child pid \(child.pid!)")
                    child.join()
                }
            },
            Example(name: "t000-fork-copy", summary: "num = 1 after the fork: each process increments its own copy (do 1 2 do 1 2); the parent joins the child") {
                let forked = try Multiprocessing.fork()
                var num = 1
                say("do", num)
                num += 1
                say("\(num)")
                switch forked {
                case .child: exit(0)
                case .parent(let child): child.join()
                }
            },
            Example(name: "t000-process", summary: "Process(target=fun): has not exec, the child's prints, exec finish") {
                let p = try Process(fun)
                say("has not exec")
                try p.start()
                p.join()
                say("exec finish")
            },
            Example(name: "t000-pool-kwargs", summary: "Pool(5): 20 × apply_async(fun, (\"zzy\", 20), {\"isalive\": False}), close, join; Swift has no **kwargs: the keywords are a dictionary in the argument") {
                let pool = try Pool(processes: 5)
                for _ in 0..<20 {
                    try pool.applyAsync(funWithKeywords, FunArguments(name: "zzy", age: 20, kwargs: ["isalive": .bool(false)]))
                }
                pool.close()
                try pool.join()
                say("finish")
            },
            Example(name: "t000-pool-terminate", summary: "the same, then close(), sleep(1) and terminate(): the tasks not started never run (**kwargs a dictionary, as above)") {
                let pool = try Pool(processes: 5)
                for _ in 0..<20 {
                    try pool.applyAsync(funQuietly, FunArguments(name: "zzy", age: 20, kwargs: ["isalive": .bool(false)]))
                }
                pool.close()
                sleep(seconds: 1)
                pool.terminate()
                // pool.join()
                say("finish")
            },
            Example(
                name: "t000-queue",
                summary: "Queue(10) holding -1, -2; a reader and a writer process. The reader loops forever, so, as the tutorial's, this never prints finish: Ctrl-C ends it"
            ) {
                let q = try Queue<Int>(capacity: 10)
                try q.put(-1)
                try q.put(-2)
                let pr = try Process(reader, argument: q)
                let pw = try Process(writer, argument: q)
                try pr.start()
                try pw.start()
                pr.join()
                pw.join()
                say("finish")
            },
            Example(
                name: "t000-manager-queue-pool",
                summary: "Manager().Queue(5) read and written by two Pool(5) tasks; it reaches the tasks as Pool(sharing:) (a task's argument cannot carry it). The reader never ends: Ctrl-C"
            ) {
                try Manager.with { manager in
                    let q = try manager.queue(of: Int.self, capacity: 5)
                    try q.put(-2)
                    try q.put(-1)
                    let pool = try Pool(processes: 5, sharing: [q.inheritableDescriptor!])
                    try pool.applyAsync(writeInPool, NoArgument())
                    try pool.applyAsync(readInPool, NoArgument())
                    pool.close()
                    try pool.join()
                    say("finish")
                }
            },
        ])
}
