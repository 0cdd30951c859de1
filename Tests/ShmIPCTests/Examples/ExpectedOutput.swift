/// What a program must print, as the lines of its processes: each process's lines come in
/// order, while the lines of processes running at once interleave in any way.
///
/// An expectation is a list of phases; a phase is a set of streams (the lines of one process,
/// or of one task, in order) whose lines interleave; every line of a phase comes before any of
/// the next. Every line of the output must be matched, and every expected line found: nothing
/// missing, nothing extra.
struct ExpectedOutput: Sendable {
    var phases: [[[OutputLine]]]

    /// One phase of the given streams.
    static func streams(_ streams: [[OutputLine]]) -> Self { Self(phases: [streams]) }
    /// One stream: the lines in this order.
    static func inOrder(_ lines: [OutputLine]) -> Self { Self(phases: [[lines]]) }
    /// The lines in any order.
    static func anyOrder(_ lines: [OutputLine]) -> Self { Self(phases: [lines.map { [$0] }]) }

    /// This, then `next`: every line of this before any of `next`.
    func then(_ next: Self) -> Self { Self(phases: phases + next.phases) }

    /// Why `lines` do not match, or nil if they do. Searches the interleavings depth first
    /// (the longest unfinished stream first, the choice that fits streams that count alike),
    /// remembering the states that failed, so that each is tried once.
    func mismatch(_ lines: [String]) -> String? {
        var start = 0
        for (index, phase) in phases.enumerated() {
            let count = phase.reduce(0) { $0 + $1.count }
            guard start + count <= lines.count else {
                return "phase \(index + 1) expects \(count) lines from line \(start + 1); the output has \(lines.count - start)"
            }
            let slice = Array(lines[start..<(start + count)])
            var failed = Set<[Int]>()
            var best = Array(repeating: 0, count: phase.count)
            if !Self.match(slice, phase, positions: best, failed: &failed, best: &best) {
                let line = start + best.reduce(0, +)
                let next = phase.indices.compactMap { best[$0] < phase[$0].count ? phase[$0][best[$0]].description : nil }
                return "line \(line + 1) (\(line < lines.count ? "\"\(lines[line])\"" : "end of output")) fits no expected line in phase "
                    + "\(index + 1); the streams expected next: \(Set(next).sorted().prefix(8).joined(separator: " | "))"
            }
            start += count
        }
        return start == lines.count ? nil : "unexpected lines from line \(start + 1): \(lines[start...].prefix(5))"
    }

    private static func match(
        _ lines: [String], _ streams: [[OutputLine]], positions: [Int], failed: inout Set<[Int]>, best: inout [Int]
    ) -> Bool {
        let index = positions.reduce(0, +)
        if index > best.reduce(0, +) { best = positions }
        if index == lines.count { return true }
        if failed.contains(positions) { return false }
        let candidates = streams.indices
            .filter { positions[$0] < streams[$0].count && streams[$0][positions[$0]].matches(lines[index]) }
            .sorted { streams[$0].count - positions[$0] > streams[$1].count - positions[$1] }
        var tried = Set<String>()
        for stream in candidates {
            // Two streams with the same lines left are interchangeable: try one.
            guard tried.insert(streams[stream][positions[stream]...].map(\.pattern).joined(separator: "\n")).inserted else { continue }
            var next = positions
            next[stream] += 1
            if match(lines, streams, positions: next, failed: &failed, best: &best) { return true }
        }
        failed.insert(positions)
        return false
    }
}

/// One expected line: the text itself, or a regular expression (`.regex`) for what varies
/// (pids, times) — matched against the whole line.
struct OutputLine: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    let pattern: String
    let isRegex: Bool

    init(stringLiteral text: String) {
        pattern = text
        isRegex = false
    }

    init(_ text: String) { self.init(stringLiteral: text) }

    private init(regex: String) {
        pattern = regex
        isRegex = true
    }

    static func regex(_ pattern: String) -> Self { Self(regex: pattern) }

    func matches(_ line: String) -> Bool {
        guard isRegex else { return line == pattern }
        // A pattern that does not compile is the test's bug: it matches nothing, and says so.
        guard let regex = try? Regex(pattern) else { return false }
        return line.wholeMatch(of: regex) != nil
    }

    var description: String { isRegex ? "/\(pattern)/" : "\"\(pattern)\"" }
}
