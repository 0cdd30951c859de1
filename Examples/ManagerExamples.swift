import ShmIPC

/// A manager's Namespace, which the tutorials do not use.
enum ManagerExamples {
    /// Python: `def g(ns): ns.x += 1; ns.y = ns.y + ['from the child']`.
    static let changeNamespace = Entry("change-namespace") { (_: Int, context: ChildContext) in
        let ns = try Namespace(inheriting: context.descriptors[0])
        try ns.modify("x", as: Int.self) { $0! += 1 }
        let y: [String]? = ns.y
        ns.y = (y ?? []) + ["from the child"]
    }

    static let entries: [any EntryPoint] = [changeNamespace]

    static let examples: [Example] = [
        Example(name: "manager-namespace", summary: "manager.Namespace(): the child increments x and extends y") {
            try Manager.with { manager in
                let ns = try manager.namespace()
                ns.x = 1
                ns.y = ["from the parent"]
                let child = try Process(changeNamespace, argument: 0, sharing: [ns.inheritableDescriptor!])
                try child.start()
                child.join()
                let x: Int? = ns.x, y: [String]? = ns.y
                say("x = \(x!), y = \(y!)")
            }
        },
    ]
}
