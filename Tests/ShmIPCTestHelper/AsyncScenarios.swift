import Glibc
import ShmIPC
import Synchronization

/// Scenarios for the async tests: measured in a process of their own, away from the test
/// runner's other threads and CPU.
extension Helper {
    static let asyncScenarios: [String: @Sendable ([String]) -> Void] = [
        // async-fanout <count>: <count> tasks each await their own queue; prints the threads
        // added while they are suspended, the CPU used idle over one second, and how many were
        // resumed with their own item once one is put into each queue.
        "async-fanout": { args in
            let count = Int(args.first ?? "1000") ?? 1000
            let queues = (0..<count).map { _ in attempt { () throws(SharedObjectError) in try Queue<Int>(capacity: 2) } }
            let before = threadNames()
            let progress = FanoutProgress()
            Task.detached {
                await withTaskGroup(of: Void.self) { group in
                    for (index, queue) in queues.enumerated() {
                        group.addTask {
                            if (try? await queue.get(timeout: .seconds(120))) == index { progress.resumed.add(1, ordering: .relaxed) }
                        }
                    }
                }
                progress.finished.store(true, ordering: .releasing)
            }
            let watchdog = Deadline.after(.seconds(60))
            while AsyncDiagnostics.suspended < count {
                if watchdog.hasPassed { fail("only \(AsyncDiagnostics.suspended) of \(count) suspended") }
                Sys.sleep(.milliseconds(10))
            }
            let suspended = threadNames()
            let cpuBefore = cpuNanoseconds(), wallBefore = Deadline.now
            Sys.sleep(.seconds(1))
            let cpu = Double(cpuNanoseconds() - cpuBefore) / Double(Deadline.now.uptimeNanoseconds - wallBefore.uptimeNanoseconds)
            for (index, queue) in queues.enumerated() {
                attempt { () throws(QueueError) in try queue.put(index, timeout: .seconds(10)) }
            }
            while !progress.finished.load(ordering: .acquiring) {
                if watchdog.hasPassed { fail("resumed \(progress.resumed.load(ordering: .relaxed)) of \(count) before the watchdog") }
                Sys.sleep(.milliseconds(10))
            }
            say("scalable \(AsyncDiagnostics.isScalable)")
            // The cooperative pool's threads are Dispatch's (named for their queue, "…qos…").
            let pool = { (names: [String]) in names.filter { $0.contains("qos") }.count }
            say("threads added \(suspended.count - before.count), beyond the pool \((suspended.count - pool(suspended)) - (before.count - pool(before)))")
            say("names \(suspended.sorted())")
            say("idle cpu \(Int(cpu * 100_000)) millipercent")
            say("resumed \(progress.resumed.load(ordering: .relaxed)) of \(count)")
        },
    ]

    /// The names of this process's threads.
    static func threadNames() -> [String] {
        guard let directory = opendir("/proc/self/task") else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let id = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard id.first?.isNumber == true, let file = fopen("/proc/self/task/\(id)/comm", "r") else { continue }
            var buffer = [CChar](repeating: 0, count: 64)
            if fgets(&buffer, 64, file) != nil {
                names.append(String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            fclose(file)
        }
        return names
    }

    /// The CPU time this process used so far (user + system), in nanoseconds.
    static func cpuNanoseconds() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000_000
            + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000
    }
}

/// What the fan-out's tasks report to the main thread.
final class FanoutProgress: Sendable {
    let resumed = Atomic<Int>(0)
    let finished = Atomic<Bool>(false)
}
