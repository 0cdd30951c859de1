import Glibc
@testable import ShmIPC
import Testing

extension ShmIPCTests {
    /// Every program in `shmipc-examples` runs and prints what its tutorial's program prints:
    /// every line, nothing more, each process's lines in its order (the lines of processes
    /// running at once interleave as they will; pids and times are patterns).
    @Suite struct ExamplesTests {
        static var path: String { Helper.path.replacingLastComponent(with: "shmipc-examples") }

        /// What one example must print, and how it ends.
        struct Expectation: Sendable {
            var output: ExpectedOutput?
            /// For a program that never ends, as its tutorial's does not: once its output
            /// satisfies this, its process group gets SIGINT (Ctrl-C), and it must die of it.
            var interruptOnce: (@Sendable ([String]) -> Bool)?
            /// Further invariants of the output: a failure message, or nil.
            var check: (@Sendable ([String]) -> String?)?

            init(
                _ output: ExpectedOutput?, interruptOnce: (@Sendable ([String]) -> Bool)? = nil,
                check: (@Sendable ([String]) -> String?)? = nil
            ) {
                self.output = output
                self.interruptOnce = interruptOnce
                self.check = check
            }
        }

        /// The output's lines (a final newline ends the last line; blank lines are lines).
        static func lines(_ output: String) -> [String] {
            var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            return lines
        }

        /// Runs `name` in a process group of its own (as a terminal runs a program) under a
        /// watchdog; its exit status and output lines.
        static func run(_ name: String, interruptOnce: (@Sendable ([String]) -> Bool)? = nil) throws -> (status: TerminationStatus, lines: [String]) {
            let child = try ChildProcess(executable: path, arguments: [name], newProcessGroup: true)
            let deadline = Deadline.after(.seconds(120))
            if let interruptOnce {
                while child.wait(deadline: .after(.milliseconds(10))) == nil, !interruptOnce(lines(child.output)), !deadline.hasPassed {}
                if child.status == nil && !deadline.hasPassed {
                    _ = child.wait(deadline: .after(.milliseconds(300)))  // a line that should not come has its chance
                    child.sendToGroup(SIGINT)  // the leader is not reaped yet: the group is still ours
                }
            }
            if child.wait(deadline: deadline) == nil {
                child.sendToGroup(SIGKILL)
                let status = child.kill()
                Issue.record("watchdog: \(name) still running after 120 s; killed (\(status)). Output:\n\(child.output)")
            }
            return (child.status!, lines(child.output))
        }

        static let ctime = #"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"#

        /// The first capture of `pattern` in each line that matches it.
        static func captures(_ lines: [String], _ pattern: String) -> [[String]] {
            let regex = try! Regex(pattern)
            return lines.compactMap { line in
                line.wholeMatch(of: regex).map { match in (1..<match.output.count).map { String(match.output[$0].substring ?? "") } }
            }
        }

        /// Tutorial 000's Queue programs: the reader's lines (the sizes vary with timing) and the writer's.
        static func queueProgram(gets: [Int]) -> Expectation {
            let reader = gets.flatMap { get -> [OutputLine] in [.regex(#"pqueue size \d+"#), "get \(get)", .regex(#"pqueue size \d+"#)] }
                + [.regex(#"pqueue size \d+"#)]  // then it waits, forever
            let writer = (0..<5).flatMap { put -> [OutputLine] in ["put \(put) ", .regex(#"queue size \d+"#)] }
            return Expectation(.streams([reader, writer]), interruptOnce: { lines in
                lines.filter { $0.hasPrefix("pqueue size ") }.count >= 2 * gets.count + 1 && lines.filter { $0.hasPrefix("queue size ") }.count >= 5
            })
        }

        /// Tutorial 001's two Process programs: the main counts to 100; at 20 two children count
        /// to 100 each; the main goes on once the second has finished.
        static let countingWithTwoChildren = Expectation(
            ExpectedOutput.inOrder((0...20).map { .regex(#"\(\d+\)主进程: \#($0)"#) }).then(.streams([
                (21..<100).map { .regex(#"\(\d+\)主进程: \#($0)"#) } + ["主进程执行完成!"],
                (0..<100).map { .regex(#"\(\d+\)子进程\(父进程:\(\d+\)\):\#($0)"#) },
                (0..<100).map { .regex(#"\(\d+\)子进程\(父进程:\(\d+\)\):\#($0)"#) },
            ])),
            check: { lines in
                let main = captures(lines, #"\((\d+)\)主进程: \d+"#).map { $0[0] }
                let children = captures(lines, #"\((\d+)\)子进程\(父进程:\((\d+)\)\):\d+"#)
                guard Set(main).count == 1, Set(children.map { $0[1] }) == Set(main) else { return "the children's parent is not the main process" }
                guard Set(children.map { $0[0] }).count == 2 else { return "not two children" }
                // mp2.join(): the main's 21 comes after one child's 99.
                let resumed = lines.firstIndex { $0.hasSuffix("主进程: 21") }!
                let finished = lines.firstIndex { $0.hasSuffix("):99") }!
                return finished < resumed ? nil : "the main went on before mp2 ended"
            })

        static let expected: [String: Expectation] = [
            // Tutorial 000
            "t000-fork": Expectation(.streams([["do", "child process pid 0"], ["do", .regex(#"parent process pid \d+"#)]])),
            "t000-fork-getpid": Expectation(
                .streams([
                    ["do", .regex(#"current child process pid \d+ parent pid \d+"#)],
                    ["do", .regex(#"current parent process pid \d+ child pid \d+"#)],
                ]),
                check: { lines in
                    let child = captures(lines, #"current child process pid (\d+) parent pid (\d+)"#)[0]
                    let parent = captures(lines, #"current parent process pid (\d+) child pid (\d+)"#)[0]
                    return child == [parent[1], parent[0]] ? nil : "the pids do not agree: \(child) \(parent)"
                }),
            "t000-fork-copy": Expectation(.streams([["do 1", "2"], ["do 1", "2"]])),
            "t000-process": Expectation(
                .inOrder(["has not exec", .regex(#"child pid \d+"#), .regex(#"parent pid \d+"#), "exec finish"]),
                check: { lines in
                    // The tutorial prints os.getpid() twice, in the child.
                    Set(captures(lines, #"(?:child|parent) pid (\d+)"#).map { $0[0] }).count == 1 ? nil : "two different pids"
                }),
            "t000-pool-kwargs": Expectation(
                ExpectedOutput.streams(Array(repeating: [.regex(#"pid \d+"#), "zzy 20 {'isalive': False}"], count: 20)).then(.inOrder(["finish"])),
                check: { lines in
                    let workers = Set(captures(lines, #"pid (\d+)"#).map { $0[0] })
                    return workers.count <= 5 ? nil : "\(workers.count) workers in a Pool(5)"
                }),
            "t000-pool-terminate": Expectation(nil, check: { lines in
                // The tasks that started in the second before terminate() print; the rest never run.
                let started = lines.dropLast().filter { $0.wholeMatch(of: #/pid \d+/#) != nil }.count
                guard lines.last == "finish", started == lines.count - 1 else { return "not pids then finish" }
                return (1...10).contains(started) ? nil : "\(started) tasks started, of 20, in a Pool(5) terminated after a second"
            }),
            "t000-queue": queueProgram(gets: [-1, -2, 0, 1, 2, 3, 4]),
            "t000-manager-queue-pool": queueProgram(gets: [-2, -1, 0, 1, 2, 3, 4]),
            // Tutorial 001
            "t001-fork": Expectation(
                ExpectedOutput.inOrder([.regex(#"父进程\(\d+\)开始执行"#)]).then(.streams([
                    [.regex(#"进程进入:\d+"#), .regex(#"我 \(\d+\) 创建的子进程ID为 \(\d+\)\."#), .regex(#"进程结束:\d+"#)],
                    [.regex(#"进程进入:\d+"#), .regex(#"子进程,其ID为 \(\d+\), 父进程ID为 \(\d+\)"#), .regex(#"进程结束:\d+"#)],
                ]))),
            "t001-process-target": countingWithTwoChildren,
            "t001-process-subclass": countingWithTwoChildren,
            "t001-set-start-method": Expectation(.inOrder([.regex(#"被启动的新进程: \(\d+\)"#), "Python"])),
            "t001-get-context": Expectation(.inOrder([.regex(#"被启动的新进程: \(\d+\)"#), "Python"])),
            "t001-pool-apply-async": Expectation(.anyOrder(["default", "位置参数", "关键字参数"].map { .regex(#"\(\d+\)进程正在执行,参数为: \#($0)"#) })),
            "t001-pool-map": Expectation(
                ExpectedOutput.streams([50, 100, 150].map { count in (0..<count).map { .regex(#"\(\d+\)进程正在执行: \#($0)"#) } })
                    .then(.inOrder(["--------------", "1225", "4950", "11175"]))),
            "t001-queue": Expectation(.streams([[.regex(#"\(\d+\) 进程开始取出数据\.\.\."#), "Python"], [.regex(#"\(\d+\) 进程开始放入数据\.\.\."#)]])),
            "t001-pipe": Expectation(.streams([[.regex(#"\(\d+\) 进程开始接收数据\.\.\."#), "Python"], [.regex(#"\(\d+\) 进程开始发送数据\.\.\."#)]])),
            "t001-account": Expectation(.streams(["甲", "乙", "丙"].map { name in
                [.regex(#"Account\(accountNo: "1234567", balance: 900, lock: .*\)"#), "\(name)取钱成功!吐出钞票:800", "\t余额为: 100"]
            })),
            "t001-http-sync": Expectation(
                ExpectedOutput.streams(Array(repeating: [
                    .regex("Start synchronizing email \(ctime)"), "{", #"    "code": 1,"#, #"    "data": 0,"#, #"    "msg": "成功""#, "}",
                    "接口调用已经返回结果,本次同步结束",
                ], count: 4)).then(.inOrder([.regex("all end: \(ctime)")]))),
            "t001-browsers": Expectation(
                ExpectedOutput.anyOrder([.regex("starting chrome browser now! \(ctime)"), .regex("starting firefox browser now! \(ctime)")])
                    .then(.inOrder([.regex("全部结束 \(ctime)")]))),
            // Tutorial 002
            "t002-pool-apply-async": Expectation(
                .streams((1...5).map { ["in: python course processes\($0)", "out, python course processes\($0)"] }),
                check: { lines in
                    var running = 0, most = 0
                    for line in lines {
                        running += line.hasPrefix("in:") ? 1 : -1
                        most = max(most, running)
                    }
                    return most <= 3 ? nil : "\(most) tasks at once in a Pool(3)"
                }),
            // Tutorial 003
            "t003-process-pids": Expectation(
                .anyOrder((1...3).map { .regex(#"zx-\#($0)的PID为\d+,他的fu进程PID为\d+"#) }),
                check: { lines in
                    // Their parent is the main process: one parent, three children.
                    let pids = captures(lines, #"zx-\d的PID为(\d+),他的fu进程PID为(\d+)"#)
                    return Set(pids.map { $0[0] }).count == 3 && Set(pids.map { $0[1] }).count == 1 ? nil : "pids \(pids)"
                }),
            "t003-daemon": Expectation(.inOrder(["end"])),
            "t003-lock": Expectation(.anyOrder((0..<10).map { OutputLine("\($0)") })),
            "t003-queue-forever": Expectation(
                nil, interruptOnce: { $0.count >= 5 },
                check: { lines in lines.count >= 5 && lines.allSatisfy { $0 == "来啊客官" } ? nil : "not 来啊客官 only" }),
            "t003-pipe-duplex": Expectation(.inOrder(["爸爸你好!", "儿子你好!"])),
            "t003-manager-dict-list": Expectation(
                .inOrder([.regex(#"\{.*\}"#), .regex(#"\[0, 1, 2, 3, 4(, \d)+\]"#)]),
                check: { lines in
                    let entries = Set(lines[0].dropFirst().dropLast().components(separatedBy: ", "))
                    let expected = Set((0..<10).map { "\($0): '1'" } + ["'2': 2", "0.25: None"])
                    guard entries == expected else { return "the dict holds \(entries.sorted())" }
                    let list = lines[1].dropFirst().dropLast().components(separatedBy: ", ")
                    return Array(list.prefix(5)) == ["0", "1", "2", "3", "4"] && Set(list.dropFirst(5)) == Set((0..<10).map(String.init))
                        && list.count == 15 ? nil : "the list is \(list)"
                }),
            "t003-pool-default": Expectation(ExpectedOutput.anyOrder((0..<40).map { OutputLine("\($0)") }).then(.inOrder(["搬砖结束"]))),
            // Tutorial 004
            "t004-global": Expectation(.inOrder(["Result(in process p1): [1, 4, 9, 16]", "Result(in main program): []"])),
            "t004-array-value": Expectation(.inOrder([
                "Result(in process p1): [1, 4, 9, 16]", "Sum of squares(in process p1): 30",
                "Result(in main program): [1, 4, 9, 16]", "Sum of squares(in main program): 30",
            ])),
            "t004-manager-records": Expectation(.inOrder(
                [" New record added !", ""] + [("Sam", 10), ("Adam", 9), ("Kevin", 9), ("Jeff", 8)].flatMap { name, score -> [OutputLine] in
                    ["Name: \(name)", "Score: \(score)", ""]
                })),
            "t004-queue-squares": Expectation(.inOrder([" Queue element :", "1", "4", "9", "16", " The queue is now empty !"])),
            "t004-pipe-end": Expectation(.streams([
                ["hello", "hey", "hru?", "END"].map { OutputLine(" Message sent : \($0)") },
                ["hello", "hey", "hru?"].map { OutputLine(" Received a message : \($0)") },
            ])),
            // Beyond the tutorials
            "defaults": Expectation(.inOrder(["Hello, Alice!", "Hi, Bob!", "Hi, Bob!"])),
            "names": Expectation(.inOrder(["main: MainProcess", "Process-1: 0", "printer: 0"])),
            "terminate": Expectation(.streams([
                ["before start: alive false", "started: alive true", "terminated: alive false, exit code -15"], ["sleeping 30 s"],
            ])),
            "pool-map": Expectation(.inOrder(["[1, 4, 9]"])),
            "pool-imap": Expectation(.inOrder(["0", "1", "4", "9", "16"])),
            "pool-map-async": Expectation(.inOrder(["callback: 10 results", "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]", "ready true, successful true"])),
            "pool-starmap": Expectation(.inOrder(["[2, 12, 30]"])),
            "account": Expectation(.inOrder(["Final balance: 1000"])),
            "event": Expectation(.streams([["setting the event"], ["waiting for the event", "the event is set"]])),
            "semaphore": Expectation(ExpectedOutput.anyOrder((1...4).map { OutputLine("Process-\($0) working") }).then(.inOrder(["at most 2 at a time"]))),
            "condition": Expectation(.anyOrder(["producer: notified", "consumer: the item is ready"])),
            // Nobody passes the barrier before all three have reached it.
            "barrier": Expectation(ExpectedOutput.anyOrder((1...3).map { OutputLine("Process-\($0) waiting") })
                .then(.anyOrder((1...3).map { OutputLine("Process-\($0) passed") }))),
            "manager-namespace": Expectation(.inOrder([#"x = 2, y = ["from the parent", "from the child"]"#])),
            "service": Expectation(.inOrder(["served 100 orders, total 5050", "shut down gracefully"])),
            "merge": Expectation(.inOrder(["merged 100 numbers, total 52450"])),
        ]

        @Test func theListNamesEveryExampleByTutorial() throws {
            let (status, lines) = try Self.run("--list")
            #expect(status == .exited(0))
            var names: [String] = [], title = ""
            for line in lines where !line.isEmpty {
                guard line.hasPrefix("  ") else {
                    title = line
                    continue
                }
                let name = String(line.dropFirst(2).prefix { $0 != " " })
                names.append(name)
                if let tutorial = name.wholeMatch(of: #/t(\d{3})-.+/#)?.1 {
                    #expect(title.hasPrefix("Tutorial \(tutorial):"), "\(name) listed under \(title)")
                } else {
                    #expect(title.hasPrefix("Beyond the tutorials"), "\(name) listed under \(title)")
                }
            }
            #expect(names.count == Set(names).count, "a name listed twice: \(names)")
            #expect(Set(names) == Set(Self.expected.keys), "\(lines)")
            #expect(names.filter { $0.hasPrefix("t0") }.count == 33)
        }

        @Test(arguments: expected.keys.sorted()) func theExampleRunsAndPrintsItsLines(_ name: String) throws {
            let expectation = Self.expected[name]!
            let (status, lines) = try Self.run(name, interruptOnce: expectation.interruptOnce)
            if expectation.interruptOnce != nil {
                #expect(status == .signaled(SIGINT), "\(name) runs until Ctrl-C: \(status)\n\(lines.joined(separator: "\n"))")
            } else {
                #expect(status == .exited(0), "\(name): \(status)\n\(lines.joined(separator: "\n"))")
            }
            if let output = expectation.output, let mismatch = output.mismatch(lines) {
                Issue.record("\(name): \(mismatch)\n\(lines.joined(separator: "\n"))")
            }
            if let check = expectation.check, let failure = check(lines) {
                Issue.record("\(name): \(failure)\n\(lines.joined(separator: "\n"))")
            }
        }

        @Test func anUnknownExampleIsRefused() throws {
            let (status, lines) = try Self.run("no-such-example")
            #expect(status != .exited(0), "\(lines)")
        }
    }

    /// The matcher the examples' tests rely on: it must reject what a program must not print.
    @Suite struct ExpectedOutputTests {
        let sut = ExpectedOutput.streams([["a1", "a2"], ["b1", .regex(#"b\d+"#)]]).then(.inOrder(["end"]))

        @Test func interleavedStreamsMatch() {
            #expect(sut.mismatch(["a1", "b1", "a2", "b7", "end"]) == nil)
            #expect(sut.mismatch(["b1", "b2", "a1", "a2", "end"]) == nil)
        }

        @Test func aStreamOutOfItsOrderDoesNotMatch() {
            #expect(sut.mismatch(["a2", "a1", "b1", "b2", "end"]) != nil)
        }

        @Test func aMissingOrExtraLineDoesNotMatch() {
            #expect(sut.mismatch(["a1", "a2", "b1", "end"]) != nil)
            #expect(sut.mismatch(["a1", "a2", "b1", "b2", "end", "finish"]) != nil)
            #expect(sut.mismatch(["a1", "a2", "b1", "b2", "b3", "end"]) != nil)
        }

        @Test func aLineOfTheNextPhaseMayNotComeEarly() {
            #expect(sut.mismatch(["a1", "a2", "b1", "end", "b2"]) != nil)
        }

        @Test func streamsThatCountAlikeButEndApartMatch() {
            let counting = ExpectedOutput.streams([2, 4].map { count in (0..<count).map { OutputLine("\($0)") } })
            #expect(counting.mismatch(["0", "0", "1", "2", "1", "3"]) == nil)
            #expect(counting.mismatch(["0", "0", "1", "2", "3", "1"]) == nil)
            #expect(counting.mismatch(["0", "1", "2", "0", "1", "2"]) != nil)
        }
    }
}

extension String {
    func replacingLastComponent(with name: String) -> String {
        guard let slash = lastIndex(of: "/") else { return name }
        return String(self[...slash]) + name
    }
}
