import AsyncAlgorithms
import Glibc
import Logging
import ServiceLifecycle
import ShmIPC
import Synchronization

/// async/await: a service that awaits a queue fed by another process, run under
/// swift-service-lifecycle's `ServiceGroup`, shutting down gracefully on SIGTERM; and two
/// queues merged with swift-async-algorithms.
enum ServiceExamples {
    /// The producer process: puts the orders, then asks its parent to shut down (as an
    /// orchestrator would, with SIGTERM).
    static let placeOrders = Entry("place-orders") { (queue: Queue<Int>, count: Int) in
        for order in 1...count { try queue.put(order, timeout: .seconds(60)) }
        kill(getppid(), SIGTERM)
    }

    /// A producer for `merge`: puts `count` numbers from `first`, then closes its queue.
    static let count = Entry("count-into") { (queue: Queue<Int>, first: Int) in
        for number in first..<(first + 50) { try queue.put(number, timeout: .seconds(60)) }
        queue.close()
    }

    static let entries: [any EntryPoint] = [placeOrders, count]

    /// Takes orders as they arrive (a task suspended on the queue between them, no thread
    /// blocked) until the group shuts down gracefully: then it closes the queue, so that no
    /// order is taken any more, serves the orders already in it (the sequence ends once the
    /// closed queue is empty), and reports.
    ///
    /// Not `queue.elements.cancelOnGracefulShutdown()`: that cancels the `next()` in flight,
    /// and an element it had just taken from the queue is dropped (one order in six runs went
    /// missing that way). Closing ends the sequence without losing anything.
    struct OrderDesk: Service {
        let queue: Queue<Int>
        /// Started here, once the group handles SIGTERM (before, the signal would end us).
        let producer: Process

        func run() async throws {
            try producer.start()
            var count = 0, total = 0
            try await withGracefulShutdownHandler {
                for try await order in queue.elements {
                    count += 1
                    total += order
                }
            } onGracefulShutdown: {
                queue.close()
            }
            say("served \(count) orders, total \(total)")
        }
    }

    static let examples: [Example] = [
        Example(name: "service", summary: "a ServiceGroup service awaits a queue another process fills; SIGTERM ends it gracefully") {
            let queue = try Queue<Int>(capacity: 256)
            let producer = try Process(placeOrders, arguments: (queue, 100))
            var logger = Logger(label: "orders")
            logger.logLevel = .warning
            let group = ServiceGroup(configuration: .init(
                services: [OrderDesk(queue: queue, producer: producer)], gracefulShutdownSignals: [.sigterm], logger: logger))
            try blockingOn { try await group.run() }
            producer.join()
            say("shut down gracefully")
        },
        Example(name: "merge", summary: "two queues, each filled by its own process, merged (swift-async-algorithms)") {
            let evens = try Queue<Int>(capacity: 16), odds = try Queue<Int>(capacity: 16)
            let producers = [try Process(count, arguments: (evens, 0)), try Process(count, arguments: (odds, 1000))]
            for producer in producers { try producer.start() }
            try blockingOn {
                var seen = 0, total = 0
                // Each sequence ends when its producer closes its queue; the merge, when both have.
                for try await number in merge(evens.elements, odds.elements) {
                    seen += 1
                    total += number
                }
                say("merged \(seen) numbers, total \(total)")
            }
            for producer in producers { producer.join() }
        },
    ]
}
