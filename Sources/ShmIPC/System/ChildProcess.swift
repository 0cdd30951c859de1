internal import CShim
#if canImport(Glibc)
internal import Glibc
#endif
package import SystemPackage

/// A child process started with `posix_spawn` (never `fork`: Notes/0000-ground-rules.md, processes), with its
/// standard output and error captured, waited for against a deadline.
///
/// Package-internal: the tests' helper runner and shm-bench use it; the public `Process`
/// type of a later issue builds on the same calls. Not thread-safe: one owner at a time.
package final class ChildProcess {
    package let pid: Int32
    private var outputDescriptor: FileDescriptor?
    private var outputBytes: [UInt8] = []
    package private(set) var status: TerminationStatus?

    /// Everything the child wrote to stdout and stderr so far.
    package var output: String { String(decoding: outputBytes, as: UTF8.self) }

    /// Spawns `executable` with `arguments` (argv[0] is the executable path).
    ///
    /// - Parameters:
    ///   - descriptors: (source in this process, number in the child) pairs, dup2'ed in the
    ///     child; the sources may be close-on-exec here. Targets must not collide with sources.
    ///   - environment: extra variables, added to this process's environment.
    ///   - newProcessGroup: whether the child leads a process group of its own, which
    ///     ``sendToGroup(_:)`` signals (the child and the processes it starts).
    package init(
        executable: String,
        arguments: [String],
        descriptors: [(source: FileDescriptor, target: Int32)] = [],
        environment: [String: String] = [:],
        captureOutput: Bool = true,
        newProcessGroup: Bool = false
    ) throws(Errno) {
        var pipeEnds: (read: FileDescriptor, write: FileDescriptor)?
        if captureOutput {
            switch Sys.makePipe(nonblockingReadEnd: true) {
            case .success(let ends): pipeEnds = ends
            case .failure(let error): throw error
            }
        }
        let spawned = Sys.spawn(
            executable: executable, arguments: arguments, descriptors: descriptors, environment: environment,
            output: pipeEnds?.write, newProcessGroup: newProcessGroup)
        if let pipeEnds { Sys.close(pipeEnds.write) }
        let child: Int32
        switch spawned {
        case .success(let pid): child = pid
        case .failure(let error):
            if let pipeEnds { Sys.close(pipeEnds.read) }
            throw error
        }
        pid = child
        outputDescriptor = pipeEnds?.read
    }

    /// Waits until the child exits or `deadline` passes; returns its status, or nil if it is
    /// still running at the deadline. Output is collected while waiting, so a chatty child
    /// never blocks on a full pipe.
    @discardableResult
    package func wait(deadline: Deadline) -> TerminationStatus? {
        var pause: Duration = .microseconds(100)
        while status == nil {
            drainOutput()
            if reap(blocking: false) { break }
            if deadline.hasPassed { return nil }
            Sys.sleep(min(pause, deadline.remaining))
            pause = min(pause * 2, .milliseconds(5))
        }
        drainOutput()
        return status
    }

    /// Sends `signal` to the child, if it has not been reaped yet.
    package func send(_ signal: Int32) {
        guard status == nil else { return }
        _ = Sys.sendSignal(signal, to: pid)
    }

    /// Sends `signal` to the child's process group (started with `newProcessGroup`): what a
    /// terminal's Ctrl-C does to a program and the processes it started. The group is signalled
    /// even once the child is reaped: its own children may outlive it.
    package func sendToGroup(_ signal: Int32) {
        _ = Sys.sendSignal(signal, to: -pid)
    }

    /// SIGKILLs the child (if still running) and reaps it.
    @discardableResult
    package func kill() -> TerminationStatus {
        send(SIGKILL)
        while status == nil { _ = reap(blocking: true) }
        drainOutput()
        return status!
    }

    deinit {
        if status == nil { kill() }
        if let outputDescriptor { Sys.close(outputDescriptor) }
    }

    private func reap(blocking: Bool) -> Bool {
        guard case .success(let ended?) = Sys.reap(pid, blocking: blocking) else { return false }
        status = ended
        return true
    }

    private func drainOutput() {
        guard let outputDescriptor else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let result = buffer.withUnsafeMutableBytes { bytes in
                valueOrErrno(.read) { Glibc.read(outputDescriptor.rawValue, bytes.baseAddress, bytes.count) }
            }
            guard case .success(let count) = result, count > 0 else { return }  // EAGAIN or EOF
            outputBytes.append(contentsOf: buffer[0..<count])
        }
    }
}

/// This process's environment as a dictionary.
package enum ProcessEnvironment {
    package static var current: [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }

    /// The path of this process's executable (/proc/self/exe).
    package static var executablePath: String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = buffer.withUnsafeMutableBytes { bytes in
            readlink("/proc/self/exe", bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count - 1)
        }
        precondition(length > 0, "cannot read /proc/self/exe")
        return String(decoding: buffer[0..<length], as: UTF8.self)
    }

    package static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
