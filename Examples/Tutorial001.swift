import Glibc
import ShmIPC

/// Tutorial 001 (in Chinese): fork and pids, `Process` with a target and as a subclass,
/// `set_start_method` and `get_context`, `Pool.apply_async` and `Pool.map`, a `Queue` and a
/// `Pipe` with `current_process()`, an `Account` guarded by an `RLock`, and two programs that
/// reach outside (an HTTP API, web browsers), kept in shape against a loopback server.
enum Tutorial001 {
    // def action(max): for i in range(max): print("(%s)子进程(父进程:(%s)):%d" % (os.getpid(), os.getppid(), i))
    static let action = Entry("t001-action") { (max: Int) in
        for i in 0..<max { say("(\(osGetpid))子进程(父进程:(\(osGetppid))):\(i)") }
    }

    /// `class MyProcess(multiprocessing.Process)`: its `max` is the argument, `run()` the body.
    struct MyProcess: Runnable {
        var max: Int
        init(_ max: Int) { self.max = max }

        // 重写run()方法作为进程执行体
        func run() {
            for i in 0..<max { say("(\(osGetpid))子进程(父进程:(\(osGetppid))):\(i)") }
        }
    }

    // def foo(q): print('被启动的新进程: (%s)' % os.getpid()); q.put('Python')
    static let foo = Entry("t001-foo") { (q: MessageQueue) in
        say("被启动的新进程: (\(osGetpid))")
        try q.put("Python")
    }

    /// `def action(name='default')`: a default argument value is the default of the argument
    /// struct's property.
    struct ActionArgument: Codable {
        var name = "default"
    }

    static let actionWithName = Entry("t001-action-name") { (argument: ActionArgument) in
        say("(\(osGetpid))进程正在执行,参数为: \(argument.name)")
        sleep(seconds: 3)
    }

    // def action(max): my_sum = 0; for i in range(max): print('(%s)进程正在执行: %d' % (os.getpid(), i)); my_sum += i; return my_sum
    static let sumAction = Entry("t001-sum-action") { (max: Int) -> Int in
        var mySum = 0
        for i in 0..<max {
            say("(\(osGetpid))进程正在执行: \(i)")
            mySum += i
        }
        return mySum
    }

    // def f(q): print('(%s) 进程开始放入数据...' % multiprocessing.current_process().pid); q.put('Python')
    static let putPython = Entry("t001-put-python") { (q: MessageQueue) in
        say("(\(Multiprocessing.currentProcess.pid)) 进程开始放入数据...")
        try q.put("Python")
    }

    // def f(conn): print('(%s) 进程开始发送数据...' % multiprocessing.current_process().pid); conn.send('Python')
    static let sendPython = Entry("t001-send-python") { (pipe: Pipe) in
        let conn = try pipe.connection(.second)  // child_conn
        say("(\(Multiprocessing.currentProcess.pid)) 进程开始发送数据...")
        try conn.send("Python")
    }

    /// `class Account`: an account number, a balance and the lock that guards it. As in the
    /// tutorial, the balance is a plain property: each process draws from its own copy (Python
    /// pickles `acct` into each child), so every draw of 800 from 900 succeeds. The RLock is
    /// shared: the draws happen one at a time.
    struct Account: Codable {
        let accountNo: String
        private var balance: Int
        let lock: RLock

        init(_ accountNo: String, _ balance: Int, _ lock: RLock) {
            self.accountNo = accountNo
            self.balance = balance
            self.lock = lock
        }

        // 因为账户余额不允许随便修改,所以只为self._balance提供getter方法
        func getBalance() -> Int { balance }

        // 提供一个进程安全的draw()方法来完成取钱操作
        mutating func draw(_ drawAmount: Int) throws {
            _ = try lock.acquire()  // (a holder that died left nothing to repair: the draw had not changed the copy it was given)
            defer { try? lock.release() }
            if balance >= drawAmount {
                say(Multiprocessing.currentProcess.name + "取钱成功!吐出钞票:" + String(drawAmount))
                sleep(seconds: 0.001)
                balance -= drawAmount
                say("\t余额为: " + String(balance))
            } else {
                say(Multiprocessing.currentProcess.name + "取钱失败!余额不足!")
            }
        }
    }

    // def draw(account, draw_amount): print(account); account.draw(draw_amount)
    static let draw = Entry("t001-draw") { (account: Account, drawAmount: Int) in
        var account = account
        say("\(account)")
        try account.draw(drawAmount)
    }

    /// `start_browser(browser, time)`'s arguments, and the page that stands in for www.baidu.com.
    struct BrowserJob: Codable {
        var browser: String
        var time: Int
        var page: String
    }

    // def start_browser(browser, time): …
    static let startBrowser = Entry("t001-start-browser") { (job: BrowserJob) in
        let (browser, time, page) = (job.browser, job.time, job.page)
        switch browser {
        case "chrome":
            say("starting chrome browser now! \(ctime())")  // 控制台打印当前时间
            let chromeDriver = try LoopbackBrowser.chrome()
            try chromeDriver.get(page)
            sleep(seconds: Double(time))
            chromeDriver.quit()
        case "firefox":
            say("starting firefox browser now! \(ctime())")
            let fireDriver = try LoopbackBrowser.firefox()
            try fireDriver.get(page)
            sleep(seconds: Double(time))
            fireDriver.quit()
        default:
            say("starting ie browser now! \(ctime())")
            let ieDriver = try LoopbackBrowser.ie()
            try ieDriver.get(page)
            sleep(seconds: Double(time))
            ieDriver.quit()
        }
    }

    static let entries: [any EntryPoint] = [
        action, MyProcess.entry, foo, actionWithName, sumAction, putPython, sendPython, draw, MailAPI.sycEmail, startBrowser,
    ]

    /// The main program of both Process programs: counts to 100, starting two children at 20.
    static func countWithTwoChildren(_ makeChild: () throws -> Process) throws {
        // 下面是主程序(也就是主进程)
        for i in 0..<100 {
            say("(\(osGetpid))主进程: \(i)")
            if i == 20 {
                // 创建并启动第一个进程
                let mp1 = try makeChild()
                try mp1.start()
                // 创建并启动第一个进程
                let mp2 = try makeChild()
                try mp2.start()
                mp2.join()
            }
        }
        say("主进程执行完成!")
    }

    static let group = ExampleGroup(
        title: "Tutorial 001: fork pids, Process target/subclass, set_start_method, get_context, Pool apply_async/map, Queue and Pipe with current_process, the Account with an RLock, a HTTP sync job, browsers",
        examples: [
            Example(name: "t001-fork", summary: "os.fork(): both processes run the code after it (进程进入, 进程结束); the parent joins the child") {
                say("父进程(\(osGetpid))开始执行")
                // 开始fork一个子进程; 从这行代码开始,下面代码都会被两个进程执行
                let pid = try Multiprocessing.fork()
                say("进程进入:\(osGetpid)")
                // 如果pid为0,表明子进程
                switch pid {
                case .child: say("子进程,其ID为 (\(osGetpid)), 父进程ID为 (\(osGetppid))")
                case .parent(let child): say("我 (\(osGetpid)) 创建的子进程ID为 (\(child.pid!)).")
                }
                say("进程结束:\(osGetpid)")
                switch pid {
                case .child: exit(0)
                case .parent(let child): child.join()
                }
            },
            Example(name: "t001-process-target", summary: "Process(target=action, args=(100,)) twice at i == 20 of the main's 100; mp2.join()") {
                try countWithTwoChildren { try Process(action, argument: 100) }
            },
            Example(name: "t001-process-subclass", summary: "the same with class MyProcess(Process) overriding run()") {
                try countWithTwoChildren { try Process(MyProcess(100)) }
            },
            Example(name: "t001-set-start-method", summary: "set_start_method('spawn'); the child puts 'Python' in a Queue, the main prints it") {
                // 设置使用spawn方式启动进程
                try Multiprocessing.setStartMethod(.spawn)
                let q = try MessageQueue()
                let mp = try Process(foo, argument: q)
                try mp.start()
                say(try q.get(as: String.self))
                mp.join()
            },
            Example(name: "t001-get-context", summary: "ctx = get_context('fork'); ctx.Queue(), ctx.Process(…): the same with fork") {
                // 设置使用fork方式启动进程,并获取Context对象
                let ctx = Multiprocessing.context(.fork)
                let q = try MessageQueue()
                let mp = try ctx.process(foo, argument: q)
                try mp.start()
                say(try q.get(as: String.self))
                mp.join()
            },
            Example(name: "t001-pool-apply-async", summary: "Pool(processes=4): apply_async(action), with args=('位置参数',), with kwds={'name': '关键字参数'}") {
                let pool = try Pool(processes: 4)
                // 将action分3次提交给进程池
                try pool.applyAsync(actionWithName, ActionArgument())
                try pool.applyAsync(actionWithName, ActionArgument(name: "位置参数"))
                try pool.applyAsync(actionWithName, ActionArgument(name: "关键字参数"))
                pool.close()
                try pool.join()
            },
            Example(name: "t001-pool-map", summary: "with Pool(processes=4) as pool: pool.map(action, (50, 100, 150)), then the three sums") {
                try Pool.with(processes: 4) { pool in
                    // 后面元组有3个元素,因此程序启动3条进程来执行action函数
                    let results = try pool.map(sumAction, [50, 100, 150])
                    say("--------------")
                    for r in results { say("\(r)") }
                }
            },
            Example(name: "t001-queue", summary: "a child puts 'Python' in a Queue; both print current_process().pid") {
                let q = try MessageQueue()
                let p = try Process(putPython, argument: q)
                try p.start()
                say("(\(Multiprocessing.currentProcess.pid)) 进程开始取出数据...")
                say(try q.get(as: String.self))  // Python
                p.join()
            },
            Example(name: "t001-pipe", summary: "parent_conn, child_conn = Pipe(): the child sends 'Python', the parent receives it") {
                let pipe = try Pipe()
                let parentConn = try pipe.connection(.first)
                let p = try Process(sendPython, argument: pipe)  // the child takes child_conn, the second end
                try p.start()
                say("(\(Multiprocessing.currentProcess.pid)) 进程开始接收数据...")
                say(try parentConn.receive(as: String.self))  // Python
                p.join()
            },
            Example(
                name: "t001-account",
                summary: "three processes 甲 乙 丙 draw 800 from an Account of 900 under an RLock; as in Python each has its own copy of the balance, so all three succeed (see account)"
            ) {
                let lock = try RLock()
                let acct = Account("1234567", 900, lock)
                // 模拟两个进程对同一个账户取钱
                try Process(draw, arguments: (acct, 800), name: "甲").start()
                try Process(draw, arguments: (acct, 800), name: "乙").start()
                try Process(draw, arguments: (acct, 800), name: "丙").start()
            },
            Example(
                name: "t001-http-sync",
                summary: "four processes PUT a form to a mail API and print its JSON reply; the API is a loopback Hummingbird server this example starts, the client AsyncHTTPClient"
            ) {
                try MailAPI.serve { url in
                    let dicts: [(String, String)] = [("1263", "13810078954"), ("1294", "13810327625"), ("1223", "18515934978"), ("1295", "13911154792")]
                    var threads: [Process] = []
                    for (userID, userName) in dicts {
                        threads.append(try Process(MailAPI.sycEmail, argument: MailAPI.Job(userID: userID, userName: userName, url: url)))
                    }
                    for p in threads { try p.start() }
                    for p in threads { p.join() }
                    say("all end: \(ctime())")
                }
            },
            Example(
                name: "t001-browsers",
                summary: "a process per browser (chrome 3 s, firefox 4 s) opens a page and quits; the browsers are stand-ins that fetch the page from a loopback server"
            ) {
                try LoopbackBrowser.servePage { page in
                    // 定义字典参数
                    let browserDict: [(String, Int)] = [("chrome", 3), ("firefox", 4)]
                    // 定义空List用于存储进程
                    var startBrowserProcessing: [Process] = []
                    // 循环字典Key-Value,创建进程并加入到List中
                    for (browser, time) in browserDict {
                        startBrowserProcessing.append(try Process(startBrowser, argument: BrowserJob(browser: browser, time: time, page: page)))
                    }
                    for processingBrowser in startBrowserProcessing { try processingBrowser.start() }
                    for processingBrowser in startBrowserProcessing { processingBrowser.join() }
                    say("全部结束 \(ctime())")
                }
            },
        ])
}
