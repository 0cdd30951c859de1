internal import Foundation
internal import GRPCCore
import ShmIPC

/// The `Objects` calls of joinable queues, lists and namespaces.
extension ObjectService {
    // MARK: joinable queues

    func queueTaskDone(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_QueueTasksResponse {
        let tasks = try object(request.name, kind: .joinableQueue).tasks!
        let unfinished = try tasks.taskDone()
        return .with { $0.unfinished = Int64(unfinished) }
    }

    func queueJoin(request: Shmipc_Remote_V1_WaitRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_QueueTasksResponse {
        let tasks = try object(request.name, kind: .joinableQueue).tasks!
        let unfinished = try await tasks.join(Self.timeout(request.hasTimeoutMs, request.timeoutMs))
        return .with { $0.unfinished = Int64(unfinished) }
    }

    // MARK: lists

    /// The list `name`, checked to hold `valueType` if given, and `index` as an `Int`.
    private func list(_ name: String, valueType: String? = nil) throws -> (Exported, Exported.ListCalls) {
        let object = try object(name, kind: .list, valueType: valueType)
        return (object, object.list!)
    }

    private static func index(_ index: Int64) throws -> Int {
        guard let index = Int(exactly: index) else { throw RPCError(code: .outOfRange, message: "index \(index)") }
        return index
    }

    private static func listValue(_ object: Exported, _ bytes: [UInt8]?, count: Int) -> Shmipc_Remote_V1_ListValueResponse {
        .with {
            if let bytes { $0.value = value(object.valueType, bytes) }
            $0.count = Int64(count)
        }
    }

    func listGet(request: Shmipc_Remote_V1_ListIndexRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListValueResponse {
        let (object, list) = try list(request.name)
        let (bytes, count) = try list.get(try Self.index(request.index))
        return Self.listValue(object, bytes, count: count)
    }

    func listSet(request: Shmipc_Remote_V1_ListSetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListValueResponse {
        let (object, list) = try list(request.name, valueType: request.value.type)
        let (old, count) = try list.set(try Self.index(request.index), request.value.data)
        return Self.listValue(object, old, count: count)
    }

    func listInsert(request: Shmipc_Remote_V1_ListSetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListValueResponse {
        let (object, list) = try list(request.name, valueType: request.value.type)
        let count = try list.insert(try Self.index(request.index), request.value.data)
        return Self.listValue(object, nil, count: count)
    }

    func listAppend(request: Shmipc_Remote_V1_ListAppendRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListValueResponse {
        let (object, list) = try list(request.name)
        for value in request.values where value.type != object.valueType {
            throw Self.typeMismatch(request.name, held: object.valueType, sent: value.type)
        }
        let count = try list.append(request.values.map(\.data))
        return Self.listValue(object, nil, count: count)
    }

    func listRemove(request: Shmipc_Remote_V1_ListIndexRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListValueResponse {
        let (object, list) = try list(request.name)
        let (old, count) = try list.remove(try Self.index(request.index))
        return Self.listValue(object, old, count: count)
    }

    func listPop(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListValueResponse {
        let (object, list) = try list(request.name)
        let (old, count) = try list.popLast()
        return Self.listValue(object, old, count: count)
    }

    func listSnapshot(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_ListSnapshotResponse {
        let (object, list) = try list(request.name)
        let values = try list.snapshot()
        return .with { $0.values = values.map { Self.value(object.valueType, $0) } }
    }

    // MARK: namespaces

    private func namespace(_ name: String) throws -> Namespace { try object(name, kind: .namespace).namespace! }

    func namespaceGet(request: Shmipc_Remote_V1_NamespaceRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_NamespaceValueResponse {
        let namespace = try namespace(request.name)
        guard !request.type.isEmpty else { throw RPCError(code: .invalidArgument, message: "a namespace read names the type to read") }
        let bytes: [UInt8]?
        do { bytes = try namespace.binaryValue(of: request.attribute, typeName: request.type) } catch .attributeType {
            throw Self.typeMismatch(request.name, held: "another type than \(request.type) in '\(request.attribute)'", sent: request.type)
        } catch { throw Exported.rpcError(error) }
        return .with { if let bytes { $0.value = Self.value(request.type, bytes) } }
    }

    func namespaceSet(request: Shmipc_Remote_V1_NamespaceSetRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_NamespaceValueResponse {
        let namespace = try namespace(request.name)
        guard !request.value.type.isEmpty else { throw RPCError(code: .invalidArgument, message: "a namespace value names its type") }
        try Exported.withStatus {
            try namespace.setBinaryValue(request.attribute, typeName: request.value.type, bytes: [UInt8](request.value.data))
        }
        return .init()
    }

    func namespaceRemove(request: Shmipc_Remote_V1_NamespaceRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_NamespaceValueResponse {
        let namespace = try namespace(request.name)
        try Exported.withStatus { try namespace.remove(request.attribute) }
        return .init()
    }

    func namespaceNames(request: Shmipc_Remote_V1_ObjectRequest, context: ServerContext) async throws -> Shmipc_Remote_V1_NamespaceNamesResponse {
        let namespace = try namespace(request.name)
        let names = try Exported.withStatus { try namespace.names() }
        return .with { $0.names = names }
    }
}
