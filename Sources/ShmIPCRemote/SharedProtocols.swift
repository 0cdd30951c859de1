public import ShmIPC

/// The awaited calls a local `Queue` and a ``RemoteQueue`` share: code written
/// against it runs on either.
///
/// ```swift
/// func drain(_ queue: some AwaitableQueue<UInt64>) async throws -> UInt64 {
///     var sum: UInt64 = 0
///     while let item = try? await queue.get(timeout: .milliseconds(100)) { sum += item }
///     return sum
/// }
/// ```
public protocol AwaitableQueue<Element>: Sendable {
    associatedtype Element
    /// Puts `value`, waiting at most `timeout` (`nil`: forever) for room.
    func put(_ value: Element, timeout: Duration?) async throws
    /// Takes the next item, waiting at most `timeout` (`nil`: forever).
    func get(timeout: Duration?) async throws -> Element
}

extension RemoteQueue: AwaitableQueue {}
extension Queue: AwaitableQueue {}
extension RemoteJoinableQueue: AwaitableQueue {}
extension JoinableQueue: AwaitableQueue {}

/// The calls a local `SharedDictionary` and a ``RemoteDictionary`` share.
public protocol KeyValueStore<Key, Value>: Sendable {
    associatedtype Key: Hashable
    associatedtype Value
    /// The value for `key`, if any.
    func value(forKey key: Key) async throws -> Value?
    /// Sets the value for `key`; returns the value it replaced, if any.
    @discardableResult func updateValue(_ value: Value, forKey key: Key) async throws -> Value?
    /// Removes `key`; returns its value, if it had one.
    @discardableResult func removeValue(forKey key: Key) async throws -> Value?
    /// The keys, in the dictionary's order.
    func keys() async throws -> [Key]
}

extension RemoteDictionary: KeyValueStore {}
extension SharedDictionary: KeyValueStore {}
