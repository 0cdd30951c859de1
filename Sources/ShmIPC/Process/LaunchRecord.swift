internal import SystemPackage

/// What a spawned or fork-server child is told about itself: written by the parent to a memfd
/// (no size limit, no blocking write), read by the child (``ChildBootstrap``) and by the fork
/// server. ``BinaryMessageCoder``-encoded.
struct LaunchRecord: Codable {
    var entry: String
    var name: String
    var identity: [Int]
    var daemon: Bool
    var parentPID: Int32
    var parentName: String
    var descriptorCount: Int
    var argument: [UInt8]

    var parent: ProcessIdentity { ProcessIdentity(pid: ProcessID(rawValue: parentPID), name: parentName) }

    /// The record in a new memfd, for the child to read.
    func written() throws(ProcessError) -> FileDescriptor {
        let record: [UInt8]
        do { record = try BinaryMessageCoder().encode(self) } catch { throw .encodingFailed("\(error)") }
        let fd: FileDescriptor
        switch Sys.memfdCreate("shmipc-launch") {
        case .success(let value): fd = value
        case .failure(let error): throw .system(call: "memfd_create", error)
        }
        if case .failure(let error) = record.withUnsafeBytes({ Sys.writeAll(fd, $0) }) {
            Sys.close(fd)
            throw .system(call: "write", error)
        }
        return fd
    }

    /// The record in `fd`, or why it could not be read.
    static func read(from fd: FileDescriptor) -> Result<LaunchRecord, ProcessError> {
        let bytes: [UInt8]
        switch Sys.readAll(fd) {
        case .success(let value): bytes = value
        case .failure(let error): return .failure(.system(call: "read (the launch record)", error))
        }
        var decoded: LaunchRecord?
        try? withBytes(of: bytes) { raw throws(ChannelError) in decoded = try BinaryMessageCoder().decode(LaunchRecord.self, from: raw) }
        guard let decoded else { return .failure(.encodingFailed("the launch record did not decode")) }
        return .success(decoded)
    }
}
