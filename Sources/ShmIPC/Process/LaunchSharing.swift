internal import SystemPackage

/// Shared objects inside a launch's argument: Python pickles a `Value`, a `Lock` or a `Queue`
/// among a `Process`'s args by registering its descriptor for the child to inherit; ShmIPC's
/// inheritable objects are `Codable` the same way.
///
/// - Encoding (in ``Process``'s initializer, and a ``Pool``'s initializer argument) runs with
///   a ``LaunchCollector``: each object adds its inheritable descriptor to the launch's
///   `sharing:` (once per descriptor) and writes its slot there, with what attaching needs
///   (a capacity, a count…) and its wait strategy. The launch keeps the objects alive.
/// - Decoding in the child runs with its ``ChildContext/descriptors`` (``LaunchDescriptors``):
///   the object attaches a duplicate of the descriptor at its slot with `init(inheriting:)`,
///   so two decoded copies of one object each own their own descriptor.
/// - Anywhere else (a Pool task, a message, JSON) encoding throws: as in Python, such objects
///   are shared through inheritance, at launch. Named objects are not inherited (open them
///   by name in the child); encoding one throws too.
///
/// With the fork start method nothing is encoded: the child runs with the argument itself.
final class LaunchCollector {
    static let key = CodingUserInfoKey(rawValue: "ShmIPC.LaunchCollector")!

    /// The launch's explicit `sharing:`, then what the argument added.
    private(set) var sharing: [FileDescriptor]
    /// The objects whose descriptors were added (kept alive until the launch is over).
    private(set) var owners: [any AnyObject & Sendable] = []

    init(sharing: [FileDescriptor]) { self.sharing = sharing }

    /// The slot of `descriptor` in the child's descriptors: where it already is, or added.
    func slot(of descriptor: FileDescriptor, owner: any AnyObject & Sendable) -> Int {
        if let slot = sharing.firstIndex(of: descriptor) { return slot }
        sharing.append(descriptor)
        owners.append(owner)
        return sharing.count - 1
    }

    /// Encodes `value` with a collector over `sharing`: the bytes, and the collector (its
    /// `sharing` and `owners` for the launch).
    static func encode<Value: Encodable>(
        _ value: Value, sharing: [FileDescriptor]
    ) throws(ChannelError) -> (bytes: [UInt8], collector: LaunchCollector) {
        let collector = LaunchCollector(sharing: sharing)
        let bytes = try BinaryMessageCoder().encode(value, collector: collector)
        return (bytes, collector)
    }
}

/// The descriptors a child was handed, for decoding the shared objects in its argument.
final class LaunchDescriptors {
    static let key = CodingUserInfoKey(rawValue: "ShmIPC.LaunchDescriptors")!
    let descriptors: [FileDescriptor]
    init(_ descriptors: [FileDescriptor]) { self.descriptors = descriptors }
}

/// How one shared object is written inside a launch's argument: its slot among the child's
/// descriptors, the numbers attaching needs beyond it (a capacity, a count, parties, a
/// maximum), and its wait strategy.
struct InheritedObject {
    /// A duplicate of the descriptor at the slot: the attached object owns and closes it. (If
    /// attaching fails, the duplicate stays open until the child exits, which it then does:
    /// a launch whose argument does not decode ends with the error.)
    let descriptor: FileDescriptor
    let parameters: [Int]
    let waitStrategy: WaitStrategy

    private enum Key: String, CodingKey { case slot, parameters, wait }

    /// Writes `object` (a `kind`, for messages) into a launch's argument.
    static func encode(
        _ object: any AnyObject & Sendable, kind: String, descriptor: FileDescriptor?, parameters: [Int] = [],
        waitStrategy: WaitStrategy = .default, to encoder: any Encoder
    ) throws {
        // The binary encoder's typed field first: no dictionary built in a launch.
        guard let collector = (encoder as? BinaryEncoder)?.collector ?? encoder.userInfo[LaunchCollector.key] as? LaunchCollector else {
            throw EncodingError.invalidValue(object, .init(
                codingPath: encoder.codingPath,
                debugDescription: "a \(kind) is shared by inheritance: it can be encoded only in the argument of a "
                    + "Process (or of a Pool's initializer), whose child inherits its descriptor, as in Python"))
        }
        guard let descriptor else {
            throw EncodingError.invalidValue(object, .init(
                codingPath: encoder.codingPath,
                debugDescription: "a named \(kind) is not inherited: open it by its name in the child"))
        }
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(collector.slot(of: descriptor, owner: object), forKey: .slot)
        try container.encode(parameters, forKey: .parameters)
        try container.encode(waitStrategy.code, forKey: .wait)
    }

    /// Reads an object written by ``encode(_:kind:descriptor:parameters:waitStrategy:to:)``
    /// in a child, duplicating the descriptor at its slot; `parameters` numbers are expected.
    init(from decoder: any Decoder, kind: String, parameters count: Int = 0) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let slot = try container.decode(Int.self, forKey: .slot)
        parameters = try container.decode([Int].self, forKey: .parameters)
        let code = try container.decode(Int.self, forKey: .wait)
        func failure(_ text: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: text))
        }
        guard parameters.count == count else { throw failure("a \(kind) with \(parameters.count) parameters, not \(count)") }
        guard let strategy = WaitStrategy(code: code) else { throw failure("a \(kind)'s wait strategy \(code)") }
        waitStrategy = strategy
        guard let inherited = (decoder as? BinaryDecoder)?.inherited ?? decoder.userInfo[LaunchDescriptors.key] as? LaunchDescriptors else {
            throw failure("a \(kind) decodes only from the argument a child was launched with")
        }
        guard inherited.descriptors.indices.contains(slot) else {
            throw failure("a \(kind) at descriptor slot \(slot); the child was handed \(inherited.descriptors.count)")
        }
        switch Sys.duplicate(inherited.descriptors[slot], atLeast: 3) {
        case .success(let duplicate): descriptor = duplicate
        case .failure(let errno): throw failure("a \(kind)'s descriptor could not be duplicated: \(errno)")
        }
    }
}

extension WaitStrategy {
    /// As written in a launch's argument: the spins of `spinThenPark` (0 or more), -1 spin,
    /// -2 park.
    var code: Int {
        switch self {
        case .spin: -1
        case .park: -2
        case .spinThenPark(let spins): max(0, spins)
        }
    }

    init?(code: Int) {
        switch code {
        case -1: self = .spin
        case -2: self = .park
        case 0...: self = .spinThenPark(spins: code)
        default: return nil
        }
    }
}
