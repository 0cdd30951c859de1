internal import SystemPackage

/// Where a child finds its descriptors: the numbers every start method agrees on.
///
/// | number | spawned child | fork-server child | fork server |
/// |---|---|---|---|
/// | 3 | its launch record (a memfd) | — | its socket to the client |
/// | 4 | the lifeline (daemons only) | the lifeline (daemons only) | the lifeline |
/// | 5… | the shared descriptors, in order | the same | — |
///
/// A forked child (``StartMethod/fork``) keeps the parent's numbers: its context names them.
enum DescriptorLayout {
    static let launchRecord: Int32 = 3
    static let forkServerSocket: Int32 = 3
    static let lifeline: Int32 = 4
    static let firstShared: Int32 = 5
    /// The most descriptors a child can be handed.
    static let maximumShared = 48

    /// The shared descriptors of a child that was handed `count`.
    static func shared(count: Int) -> [FileDescriptor] {
        (0..<count).map { FileDescriptor(rawValue: firstShared + Int32($0)) }
    }

    /// Close-on-exec copies of `sources`, numbered above every descriptor a child is given
    /// (launch 3, lifeline 4, shared 5…): dup2s into a child then never overwrite a source
    /// another dup2 still needs. On failure the copies made so far are closed.
    static func copiesAboveChildDescriptors(_ sources: [FileDescriptor]) throws(ProcessError) -> [FileDescriptor] {
        var copies: [FileDescriptor] = []
        for source in sources {
            switch Sys.duplicate(source, atLeast: firstShared + Int32(maximumShared)) {
            case .success(let fd): copies.append(fd)
            case .failure(let error):
                copies.forEach(Sys.close)
                throw .system(call: "fcntl(F_DUPFD_CLOEXEC)", error)
            }
        }
        return copies
    }

    /// In a forked child: moves `sharing` (closing the originals) to 5…, where a spawned
    /// child finds them. False if a dup failed (the child must give up).
    static func placeShared(_ sharing: [FileDescriptor]) -> Bool {
        guard let moved = try? copiesAboveChildDescriptors(sharing) else { return false }
        sharing.forEach(Sys.close)
        for (index, fd) in moved.enumerated() {
            guard case .success = Sys.duplicate(fd, to: firstShared + Int32(index)) else { return false }
            Sys.close(fd)
        }
        return true
    }
}
