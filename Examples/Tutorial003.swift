import Glibc
import ShmIPC

/// Tutorial 003 (in Chinese): Process subclasses and their pids, daemons, a Lock, a Queue read
/// forever, a duplex Pipe, a Manager's dict and list, a Pool of the default size.
enum Tutorial003 {
    /// `class zx(Process)`, whose `run()` sleeps a second and prints its name and pids. The
    /// type keeps the tutorial's name: Python names a subclass's processes after it (`zx-1`),
    /// and so does ShmIPC.
    struct zx: Runnable {  // swiftlint:disable:this type_name
        func run() {
            sleep(seconds: 1)
            say("\(Multiprocessing.currentProcess.name)的PID为\(osGetpid),他的fu进程PID为\(osGetppid)")
        }
    }

    // def zx(i, lock): lock.acquire(); time.sleep(0.5); print(i); lock.release()
    static let printUnderLock = Entry("t003-zx-lock") { (i: Int, lock: Lock) in
        _ = try lock.acquire()  // (a holder that died left nothing to repair: the lock guards the screen)
        sleep(seconds: 0.5)
        say("\(i)")
        try lock.release()
    }

    // def zx(q): while 1: time.sleep(0.5); q.put("来啊客官")
    static let putForever = Entry("t003-zx-queue") { (q: MessageQueue) in
        while true {
            sleep(seconds: 0.5)
            try q.put("来啊客官")
        }
    }

    // def f(conn): conn.send("爸爸你好!"); response = conn.recv(); print(response); conn.close()
    static let talk = Entry("t003-f-pipe") { (pipe: Pipe) in
        let conn = try pipe.connection(.second)  // child_conn
        try conn.send("爸爸你好!")
        let response = try conn.receive(as: String.self)
        say(response)
        conn.close()
    }

    /// `f(d, l, n)`'s arguments: the manager's dict and list, and the number.
    struct DictListJob: Codable {
        var d: SharedDictionary<PyValue, PyValue>
        var l: SharedList<Int>
        var n: Int
    }

    // def f(d, l, n): d[n] = '1'; d['2'] = 2; d[0.25] = None; l.append(n)
    static let fillDictAndList = Entry("t003-f-manager") { (job: DictListJob) in
        let (d, l, n) = (job.d, job.l, job.n)
        try d.setValue(.str("1"), forKey: .int(n))
        try d.setValue(.int(2), forKey: .str("2"))
        try d.setValue(.None, forKey: .float(0.25))
        try l.append(n)
    }

    // def zx(i): time.sleep(0.5); print(i)
    static let sleepAndPrint = Entry("t003-zx-pool") { (i: Int) in
        sleep(seconds: 0.5)
        say("\(i)")
    }

    static let entries: [any EntryPoint] = [zx.entry, printUnderLock, putForever, talk, fillDictAndList, sleepAndPrint]

    static let group = ExampleGroup(
        title: "Tutorial 003: Process subclasses and pids, daemon, Lock, Queue forever, duplex Pipe, Manager dict/list, Pool default size",
        examples: [
            Example(name: "t003-process-pids", summary: "three zx(Process) print their names (zx-1…) and pids: their parent is the main process") {
                let j1 = try Process(zx())
                try j1.start()
                let j2 = try Process(zx())
                try j2.start()
                let j3 = try Process(zx())
                try j3.start()
            },
            Example(name: "t003-daemon", summary: "the same three with daemon=True: the main prints end and exits, and they die with it") {
                var js: [Process] = []
                js.append(try Process(zx()))
                js.append(try Process(zx()))
                js.append(try Process(zx()))
                for i in js {
                    i.daemon = true
                    try i.start()
                }
                say("end")
            },
            Example(name: "t003-lock", summary: "ten processes print their number one at a time under a multiprocessing Lock") {
                let lock = try Lock()
                for i in 0..<10 {
                    try Process(printUnderLock, arguments: (i, lock)).start()
                }
            },
            Example(
                name: "t003-queue-forever",
                summary: "a child puts 来啊客官 into a Queue(3) every 0.5 s, the main prints what it gets; both loop forever, as the tutorial's: Ctrl-C ends them"
            ) {
                let q = try MessageQueue(capacity: 3)
                let j = try Process(putForever, argument: q)
                try j.start()
                while true {
                    say(try q.get(as: String.self))
                }
            },
            Example(name: "t003-pipe-duplex", summary: "a duplex Pipe: the child sends 爸爸你好!, the parent prints it and answers 儿子你好!") {
                let pipe = try Pipe()
                let parentConn = try pipe.connection(.first)
                let p = try Process(talk, argument: pipe)  // the child takes child_conn, the second end
                try p.start()
                say(try parentConn.receive(as: String.self))  // prints "爸爸你好!"
                try parentConn.send("儿子你好!")
                p.join()
            },
            Example(
                name: "t003-manager-dict-list",
                summary: "ten processes fill a Manager dict (mixed keys: n, '2', 0.25) and append to its list(range(5)); the dict prints in its own order, not Python's insertion order"
            ) {
                try Manager.with { manager in
                    let d: SharedDictionary<PyValue, PyValue> = try manager.dict()
                    let l = try manager.list(Array(0..<5))
                    var pList: [Process] = []
                    for i in 0..<10 {
                        let p = try Process(fillDictAndList, argument: DictListJob(d: d, l: l, n: i))
                        try p.start()
                        pList.append(p)
                    }
                    for res in pList { res.join() }
                    say(pythonRepr(try d.snapshot().map { ($0.key, $0.value) }))
                    say("\(try l.snapshot())")
                }
            },
            Example(name: "t003-pool-default", summary: "Pool(): as many workers as CPUs; forty apply_async(zx, (i,)), close, join, 搬砖结束") {
                // 默认进程池的数量为你电脑的cpu数量
                let pool = try Pool()
                for i in 0..<40 {
                    try pool.applyAsync(sleepAndPrint, i)
                }
                pool.close()
                try pool.join()
                say("搬砖结束")
            },
        ])
}
