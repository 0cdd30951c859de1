internal import SystemPackage

/// ``StartMethod/spawn``: `posix_spawn` of the executable with ``ChildBootstrap/childFlag``;
/// the child reads its launch record from descriptor 3 (``DescriptorLayout``).
struct SpawnLauncher: Launcher {
    var encodesArgument: Bool { true }

    func launch(_ request: LaunchRequest) throws(ProcessError) -> any ChildHandle {
        let launchFD = try request.record.written()
        defer { Sys.close(launchFD) }

        var sources = [launchFD]
        var targets = [DescriptorLayout.launchRecord]
        if request.daemon {
            sources.append(try ChildRegistry.lifelineReadEnd())
            targets.append(DescriptorLayout.lifeline)
        }
        sources += request.sharing
        targets += request.sharing.indices.map { DescriptorLayout.firstShared + Int32($0) }
        let moved = try DescriptorLayout.copiesAboveChildDescriptors(sources)
        defer { moved.forEach(Sys.close) }

        let program = request.executable ?? ProcessEnvironment.executablePath
        switch Sys.spawn(
            executable: program, arguments: [ChildBootstrap.childFlag],
            descriptors: Array(zip(moved, targets)).map { (source: $0.0, target: $0.1) })
        {
        case .success(let pid): return try DirectChild(adopting: pid, daemon: request.daemon)
        case .failure(let error): throw .system(call: "posix_spawn \(program)", error)
        }
    }
}
