import ShmIPC
import Synchronization

/// Pool: map, apply_async in a loop then close/join, imap, map_async, starmap.
enum PoolExamples {
    static let square = Entry("square") { (x: Int) in x * x }
    static let multiply = Entry("multiply") { (pair: Pair<Int, Int>) in pair.first * pair.second }

    static let entries: [any EntryPoint] = [square, multiply]

    static let examples: [Example] = [
        Example(name: "pool-map", summary: "with Pool(5) as p: print(p.map(f, [1, 2, 3]))") {
            try Pool.with(processes: 5) { p in say("\(try p.map(square, [1, 2, 3]))") }
        },
        Example(name: "pool-imap", summary: "for result in p.imap(f, range(5)): print(result)") {
            try Pool.with(processes: 2) { p in
                for result in p.imap(square, 0..<5) { say("\(try result.get())") }
            }
        },
        Example(name: "pool-map-async", summary: "map_async(f, range(10)).get(timeout=60), with callback") {
            try Pool.with(processes: 2) { p in
                let handle = try p.mapAsync(square, Array(0..<10), callback: { squares in say("callback: \(squares.count) results") })
                say("\(try handle.get(timeout: .seconds(60)))")
                say("ready \(handle.isReady), successful \(handle.isSuccessful!)")
            }
        },
        Example(name: "pool-starmap", summary: "p.starmap(mul, [(1, 2), (3, 4)])") {
            try Pool.with(processes: 2) { p in say("\(try p.starmap(multiply, [(1, 2), (3, 4), (5, 6)]))") }
        },
    ]
}
