import ShmIPC

/// Tutorial 002 (in English): `Pool(processes = 3)`, five `apply_async(func, (msg,))`, then
/// `close()` and `join()`: at most three tasks run at once.
enum Tutorial002 {
    // def func(msg): print("in:", msg); time.sleep(3); print("out,", msg)
    static let function = Entry("t002-func") { (msg: String) in
        say("in:", msg)
        sleep(seconds: 3)
        say("out,", msg)
    }

    static let entries: [any EntryPoint] = [function]

    static let group = ExampleGroup(
        title: "Tutorial 002: Pool, apply_async with messages, map, close/join",
        examples: [
            Example(name: "t002-pool-apply-async", summary: "Pool(processes = 3): five apply_async(func, (msg,)), close(), join(): three tasks at a time") {
                // Here, the number of processes allowed to run at the same time should consider the number of machine CPUs.
                let pool = try Pool(processes: 3)
                let itemList = ["processes1", "processes2", "processes3", "processes4", "processes5"]
                for item in itemList {
                    let msg = "python course \(item)"
                    // The total number of processes to be executed is processes. When a process is completed, a new process will be added
                    try pool.applyAsync(function, msg)
                }
                pool.close()
                try pool.join()  // Call the close function before calling join
            },
        ])
}
