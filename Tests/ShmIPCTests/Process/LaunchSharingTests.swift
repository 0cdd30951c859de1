import Foundation
import Glibc
@testable import ShmIPC
import ShmIPCTestSupport
import SystemPackage
import Testing

extension ShmIPCTests {
    /// Shared objects inside a launch's argument (Python pickling a `Value` or a `Lock` among a
    /// `Process`'s args): the child attaches the same objects, in one step.
    @Suite struct LaunchSharingTests {
        /// The tutorial's `Account` (a `Value` and the `RLock` guarding it) handed to three
        /// children at once: every read-yield-write deposit under the shared lock counts, so
        /// the lock and the balance are the same objects in every process.
        @Test(arguments: ProcessTests.methods) func anObjectHoldingALockReachesChildrenInOneStep(method: StartMethod) throws {
            let account = try TestEntries.Account(balance: 100)
            let done = try Queue<Int>(capacity: 8)
            let children = try (0..<3).map { _ in
                try ShmIPC.Process(
                    TestEntries.deposit, argument: TestEntries.Deposits(account: account, done: done, times: 200, amount: 5),
                    daemon: true, startMethod: method, executable: Helper.path)
            }
            for child in children { #expect(try ProcessTests.run(child) == 0) }
            #expect(account.balance.value == 100 + 3 * 200 * 5)
            #expect(try (0..<3).map { _ in try done.get(timeout: .seconds(10)) } == [200, 200, 200])
        }

        /// A pool initializer's argument carries shared objects to every worker (Python's
        /// `Pool(initializer=init, initargs=(account,))`).
        @Test(arguments: ProcessTests.methods) func aPoolInitializersArgumentCarriesSharedObjects(method: StartMethod) throws {
            let account = try TestEntries.Account(balance: 0)
            let pool = try Pool(
                processes: 2, initializer: TestEntries.keepAccount, initializerArgument: account, startMethod: method,
                executable: Helper.path)
            defer { pool.terminate() }
            let amounts = Array(1...100)
            #expect(try pool.map(TestEntries.depositIntoKept, amounts, chunkSize: 1, timeout: .seconds(60)) == amounts)
            #expect(account.balance.value == amounts.reduce(0, +))
        }

        /// Encoding collects each object's descriptor once, after the launch's own `sharing:`
        /// (where an object already there keeps its slot), and keeps the objects alive;
        /// decoding attaches duplicates, so the copies see the same memory.
        @Test func objectsEncodeAsSlotsAndDecodeAsAttachedCopies() throws {
            struct Objects: Codable {
                var total: Value<Int>
                var lock: Lock
                var sameLock: Lock
                var array: SharedArray<Int>
                var queue: Queue<Int>
                var semaphore: ShmIPC.Semaphore
                var barrier: Barrier
                var messages: MessageQueue
            }
            let explicit = try Event()
            let bundle = Objects(
                total: try Value(7), lock: try Lock(), sameLock: try Lock(), array: try SharedArray(count: 3, repeating: 1),
                queue: try Queue<Int>(capacity: 10), semaphore: try ShmIPC.Semaphore(value: 2, maximum: 5), barrier: try Barrier(parties: 3),
                messages: try MessageQueue(maxMessageSize: 32, capacity: 5))
            var withRepeat = bundle
            withRepeat.sameLock = bundle.lock
            let (bytes, collector) = try LaunchCollector.encode(withRepeat, sharing: [explicit.inheritableDescriptor!, bundle.lock.inheritableDescriptor!])
            // Event, lock (already there), then value, array, queue, semaphore, barrier, messages.
            #expect(collector.sharing.count == 8)
            #expect(collector.owners.count == 6)

            let copy = try bytes.withUnsafeBytes {
                try BinaryMessageCoder().decode(Objects.self, from: $0, inherited: LaunchDescriptors(collector.sharing))
            }
            #expect(copy.total.inheritableDescriptor != bundle.total.inheritableDescriptor)
            copy.total.value = 41
            #expect(bundle.total.value == 41)
            copy.array[2] = 9
            #expect(bundle.array[2] == 9 && copy.array.count == 3)
            try copy.queue.put(5)
            #expect(try bundle.queue.tryGet() == 5 && copy.queue.capacity == 10)
            #expect(copy.semaphore.maximum == 5 && copy.semaphore.currentValue == 2)
            #expect(copy.barrier.parties == 3)
            #expect(copy.messages.capacity == 5 && copy.messages.maxMessageSize == 32)
            #expect(copy.lock.tryAcquire() != nil)
            #expect(bundle.lock.tryAcquire() == nil)    // the same lock
            #expect(copy.sameLock.tryAcquire() == nil)  // and the same again, through one slot
            try copy.lock.release()
        }

        /// As in Python, such objects are shared by inheritance: outside a launch (a pool
        /// task, a message, JSON) they do not encode, and bytes not from a launch do not decode.
        @Test func outsideALaunchSharedObjectsNeitherEncodeNorDecode() throws {
            let lock = try Lock()
            #expect {
                _ = try BinaryMessageCoder().encode(lock)
            } throws: { error in
                "\(error)".contains("shared by inheritance")
            }
            #expect(throws: EncodingError.self) { _ = try JSONEncoder().encode([lock]) }

            let (bytes, _) = try LaunchCollector.encode(lock, sharing: [])
            #expect {
                _ = try bytes.withUnsafeBytes { try BinaryMessageCoder().decode(Lock.self, from: $0) }
            } throws: { error in
                "\(error)".contains("decodes only from the argument a child was launched with")
            }
            #expect {
                _ = try bytes.withUnsafeBytes {
                    try BinaryMessageCoder().decode(Lock.self, from: $0, inherited: LaunchDescriptors([]))
                }
            } throws: { error in
                "\(error)".contains("slot 0; the child was handed 0")
            }

            let pool = try Pool(processes: 1, executable: Helper.path)
            defer { pool.terminate() }
            #expect {
                try pool.apply(TestEntries.takesLock, lock, timeout: .seconds(30))
            } throws: { error in
                "\(error)".contains("shared by inheritance")
            }
        }

        /// A named object is not inherited: the launch refuses it with a typed error, saying
        /// to open it by name.
        @Test func aNamedObjectInALaunchIsATypedError() throws {
            let name = TestNames.unique()
            defer { TestNames.cleanUp(name) }
            let lock = try Lock(name: name, mode: .createExclusive)
            #expect {
                _ = try ShmIPC.Process(TestEntries.takesLock, argument: lock, startMethod: .spawn, executable: Helper.path)
            } throws: { error in
                guard case ProcessError.encodingFailed(let text) = error else { return false }
                return text.contains("open it by its name in the child")
            }
            try lock.unlink()
        }
    }
}
