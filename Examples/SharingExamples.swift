import ShmIPC

/// Sharing data beyond the tutorials: tutorial 001's `Account` as it was meant, its balance a
/// shared `Value` beside the `RLock`, both travelling inside a target's arguments.
enum SharingExamples {
    /// Tutorial 001's `Account` with a shared balance: a `Value` and the RLock guarding it, passed to each child
    /// in one step. `transfer` holds the lock and calls `deposit`, which takes it again.
    struct Account: Codable {
        let balance: Value<Int>
        let lock: RLock

        init(balance: Int) throws {
            self.balance = try Value(balance)
            lock = try RLock()
        }

        func deposit(_ amount: Int) throws {
            try lock.withLock { balance.value += amount }
        }

        func withdraw(_ amount: Int) throws {
            try lock.withLock {
                guard balance.value >= amount else { return }
                try deposit(-amount)  // re-entered: an RLock
            }
        }
    }

    static let depositMany = Entry("deposit-many") { (account: Account, times: Int) in
        for _ in 0..<times { try account.deposit(1) }
    }

    static let withdrawMany = Entry("withdraw-many") { (account: Account, times: Int) in
        for _ in 0..<times { try account.withdraw(1) }
    }

    static let entries: [any EntryPoint] = [depositMany, withdrawMany]

    static let examples: [Example] = [
        Example(name: "account", summary: "an Account holding a Value and an RLock, passed to two processes") {
            let account = try Account(balance: 500)  // enough that no withdrawal is refused
            let depositor = try Process(depositMany, arguments: (account, 1000))
            let withdrawer = try Process(withdrawMany, arguments: (account, 500))
            try depositor.start()
            try withdrawer.start()
            depositor.join()
            withdrawer.join()
            say("Final balance: \(account.balance.value)")
        },
    ]
}
