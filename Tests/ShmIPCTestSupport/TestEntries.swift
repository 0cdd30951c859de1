import Glibc
public import ShmIPC
import Synchronization

/// The entry points the tests start as child processes (registered by the helper executable,
/// which the tests spawn with `executable:`), and the error the throwing one throws.
public enum TestEntries {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { "TestEntries.Failure: \(message)" }
    }

    /// What `identity` checks about itself.
    public struct Identity: Codable, Sendable {
        public var name: String
        public var parentPID: Int32
        /// Whether the parent is also the OS parent (not with a fork server).
        public var parentIsOSParent: Bool
        public init(name: String, parentPID: Int32, parentIsOSParent: Bool = true) {
            self.name = name
            self.parentPID = parentPID
            self.parentIsOSParent = parentIsOSParent
        }
    }

    /// Returns at once (exit code 0).
    public static let returns = Entry("t.returns") { (_: Int) in }
    /// Throws a `Failure` with the message (exit code 1).
    public static let throwing = Entry("t.throws") { (message: String) in throw Failure(message: message) }
    /// Traps (exit code -SIGILL or -SIGTRAP).
    public static let traps = Entry("t.traps") { (value: Int) in
        let values = [value]
        _ = values[value + 1]  // out of range: a trap
    }
    /// Sleeps for the milliseconds given.
    public static let sleeps = Entry("t.sleeps") { (milliseconds: Int) in
        Sys.sleep(.milliseconds(milliseconds))
    }
    /// Throws unless its name and parent are as given.
    public static let identity = Entry("t.identity") { (expected: Identity) in
        let me = Multiprocessing.currentProcess, parent = Multiprocessing.parentProcess
        guard me.name == expected.name, me.pid.rawValue == getpid(), parent?.pid.rawValue == expected.parentPID,
              (parent?.pid.rawValue == getppid()) == expected.parentIsOSParent else {
            throw Failure(message: "I am \(me) with parent \(String(describing: parent)), expected \(expected)")
        }
    }
    /// Puts 0..<count into the `Queue<Int>` (capacity 64) handed over as its first descriptor,
    /// then returns count * 2 (for a Pool).
    public static let produce = Entry("t.produce") { (count: Int, context: ChildContext) -> Int in
        let queue = try Queue<Int>(inheriting: context.descriptors[0], capacity: 64)
        for i in 0..<count { try queue.put(i, timeout: .seconds(30)) }
        return count * 2
    }

    // Pool tasks.
    public static let square = Entry("t.square") { (x: Int) in x * x }
    public static let power = Entry("t.power") { (pair: Pair<Int, Int>) -> Int in
        (0..<pair.second).reduce(1) { result, _ in result * pair.first }
    }
    /// Throws for 13, squares the rest.
    public static let unlucky = Entry("t.unlucky") { (x: Int) -> Int in
        if x == 13 { throw Failure(message: "unlucky \(x)") }
        return x * x
    }
    /// SIGKILLs its own process (a worker killed mid-task).
    public static let killsItself = Entry("t.kills-itself") { (_: Int) -> Int in
        kill(getpid(), SIGKILL)
        Sys.sleep(.seconds(60))
        return 0
    }
    /// Sleeps the milliseconds given, then returns its pid.
    public static let sleepsThenReportsPID = Entry("t.sleeps-then-pid") { (milliseconds: Int) -> Int32 in
        Sys.sleep(.milliseconds(milliseconds))
        return getpid()
    }
    /// What `setTag` (a pool initializer) stored in this worker, and the worker's pid.
    public static let tagAndPID = Entry("t.tag-and-pid") { (_: Int) -> Pair<Int, Int32> in Pair(tag.load(ordering: .relaxed), Int32(getpid())) }
    public static let setTag = Entry("t.set-tag") { (value: Int) in tag.store(value, ordering: .relaxed) }
    static let tag = Atomic<Int>(0)
    /// A pool initializer that always throws.
    public static let failingInitializer = Entry("t.failing-initializer") { (value: Int) in
        throw Failure(message: "initializer refused \(value)")
    }

    /// This process's name, and the default name of a process it would create next.
    public static let names = Entry("t.names") { (_: Int) -> [String] in
        [Multiprocessing.currentProcess.name, try ShmIPC.Process(returns, argument: 0).name]
    }

    /// A `Runnable` (a Process "subclass"): writes `value` into slot `slot` of the
    /// `SharedArray<Int>` (count 4) it is handed, and the length of its own name into slot 3;
    /// sleeps first if asked; throws instead if `fails`.
    public struct Worker: Runnable {
        public var slot: Int
        public var value: Int
        public var fails = false
        public var sleepMilliseconds = 0
        public init(slot: Int, value: Int, fails: Bool = false, sleepMilliseconds: Int = 0) {
            self.slot = slot
            self.value = value
            self.fails = fails
            self.sleepMilliseconds = sleepMilliseconds
        }

        public func run(context: ChildContext) throws {
            Sys.sleep(.milliseconds(sleepMilliseconds))
            if fails { throw Failure(message: "worker \(slot) refused") }
            let array = try SharedArray<Int>(inheriting: context.descriptors[0], count: 4)
            array[slot] = value
            array[3] = Multiprocessing.currentProcess.name.utf8.count
        }
    }

    /// No argument (Python's `Process(target=f)`): exits 0.
    public static let noArgument = Entry("t.no-argument") { () in }
    /// Two arguments (Python's `args=(a, b)`): throws unless `label` is "x" + `number`;
    /// returns `number * 2` (for a Pool).
    public static let twoArguments = Entry("t.two-arguments") { (number: Int, label: String) -> Int in
        guard label == "x\(number)" else { throw Failure(message: "\(label) is not x\(number)") }
        return number * 2
    }

    /// Adds its argument to the `Value<Int>` handed to the pool (`sharing:`); returns it.
    public static let addToShared = Entry("t.add-to-shared") { (amount: Int, context: ChildContext) -> Int in
        let total = try Value<Int>(inheriting: context.descriptors[0])
        total.add(amount)
        return amount
    }

    /// Ignores SIGTERM, then sleeps the milliseconds given and returns its pid (a worker only
    /// SIGKILL ends).
    public static let ignoresTerminate = Entry("t.ignores-terminate") { (milliseconds: Int) -> Int32 in
        signal(SIGTERM, SIG_IGN)
        Sys.sleep(.milliseconds(milliseconds))
        return getpid()
    }

    /// The tutorial's account: a balance and the lock that guards it, handed to a child in
    /// one step (its shared objects travel inside the argument).
    public struct Account: Codable, Sendable {
        public let balance: Value<Int>
        public let lock: RLock
        public init(balance: Int) throws {
            self.balance = try Value(balance)
            lock = try RLock()
        }
        /// A read, then a write, under the lock: racing depositors lose nothing only if the
        /// lock is the same lock in every process.
        public func deposit(_ amount: Int) throws {
            try lock.withLock {
                let before = balance.value
                Sys.yield()
                balance.value = before + amount
            }
        }
    }

    /// Deposits `amount` into `account` `times` times, then puts its count of deposits into
    /// `done` (a queue in the same argument, beside the account; the same lock twice
    /// travels once).
    public struct Deposits: Codable, Sendable {
        public var account: Account
        public var sameLock: RLock
        public var done: Queue<Int>
        public var times: Int
        public var amount: Int
        public init(account: Account, done: Queue<Int>, times: Int, amount: Int) {
            self.account = account
            sameLock = account.lock
            self.done = done
            self.times = times
            self.amount = amount
        }
    }

    public static let deposit = Entry("t.deposit") { (job: Deposits) in
        guard job.sameLock.inheritableDescriptor != job.account.lock.inheritableDescriptor else {
            throw Failure(message: "two copies of one lock share a descriptor")
        }
        for _ in 0..<job.times { try job.account.deposit(job.amount) }
        try job.done.put(job.times, timeout: .seconds(30))
    }

    /// A pool initializer keeping the account it is given (Python's `initargs=(account,)`);
    /// `depositInto` deposits its argument into it.
    public static let keepAccount = Entry("t.keep-account") { (account: Account) in kept.withLock { $0 = account } }
    public static let depositIntoKept = Entry("t.deposit-into-kept") { (amount: Int) -> Int in
        guard let account = kept.withLock({ $0 }) else { throw Failure(message: "no account kept") }
        try account.deposit(amount)
        return amount
    }
    static let kept = Mutex<Account?>(nil)
    /// An entry whose argument is a lock: encoding it for a pool task must fail.
    public static let takesLock = Entry("t.takes-lock") { (lock: Lock) in _ = lock }

    /// The square, after half a millisecond: a map long enough to kill a worker host in.
    public static let squareSlowly = Entry("t.square-slowly") { (x: Int) -> Int in
        usleep(500)
        return x * x
    }

    public static let all: [any EntryPoint] = [
        squareSlowly, returns, throwing, traps, sleeps, identity, produce,
        square, power, unlucky, killsItself, sleepsThenReportsPID, tagAndPID, setTag, failingInitializer, names,
        Worker.entry, noArgument, twoArguments, addToShared, ignoresTerminate,
        deposit, keepAccount, depositIntoKept, takesLock,
    ]
}
