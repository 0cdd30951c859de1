// The inheritable shared objects as `Codable` values of a launch's argument (LaunchSharing.swift):
// each writes its descriptor's slot among the child's descriptors and what attaching needs,
// and decodes in the child by attaching a duplicate of that descriptor. Here, in the layer
// that launches, so the objects' own layers know nothing of launches.

extension Value: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "Value", descriptor: inheritableDescriptor, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        try self.init(inheriting: InheritedObject(from: decoder, kind: "Value").descriptor)
    }
}

extension SharedArray: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "SharedArray", descriptor: inheritableDescriptor, parameters: [count], to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "SharedArray", parameters: 1)
        try self.init(inheriting: object.descriptor, count: object.parameters[0])
    }
}

extension Lock: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "Lock", descriptor: inheritableDescriptor, waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Lock")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension RLock: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "RLock", descriptor: inheritableDescriptor, waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "RLock")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension Semaphore: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "Semaphore", descriptor: inheritableDescriptor, parameters: [maximum ?? -1], waitStrategy: waitStrategy,
            to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Semaphore", parameters: 1)
        let maximum = object.parameters[0]
        try self.init(inheriting: object.descriptor, maximum: maximum < 0 ? nil : maximum, waitStrategy: object.waitStrategy)
    }
}

extension Event: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "Event", descriptor: inheritableDescriptor, waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Event")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension Condition: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "Condition", descriptor: inheritableDescriptor, waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Condition")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension Barrier: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "Barrier", descriptor: inheritableDescriptor, parameters: [parties], waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Barrier", parameters: 1)
        try self.init(inheriting: object.descriptor, parties: object.parameters[0], waitStrategy: object.waitStrategy)
    }
}

extension Queue: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "Queue", descriptor: inheritableDescriptor, parameters: [capacity], waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Queue", parameters: 1)
        try self.init(inheriting: object.descriptor, capacity: object.parameters[0], waitStrategy: object.waitStrategy)
    }
}

extension JoinableQueue: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "JoinableQueue", descriptor: inheritableDescriptor, parameters: [capacity],
            waitStrategy: queue.waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "JoinableQueue", parameters: 1)
        try self.init(inheriting: object.descriptor, capacity: object.parameters[0], waitStrategy: object.waitStrategy)
    }
}

extension SPSCQueue: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "SPSCQueue", descriptor: inheritableDescriptor, parameters: [capacity], to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "SPSCQueue", parameters: 1)
        try self.init(inheriting: object.descriptor, capacity: object.parameters[0])
    }
}

extension MessageQueue: Codable {
    /// Only with the default coder: the child's copy decodes with it.
    public func encode(to encoder: any Encoder) throws {
        guard coder is BinaryMessageCoder else {
            throw EncodingError.invalidValue(self, .init(
                codingPath: encoder.codingPath,
                debugDescription: "a MessageQueue with its own coder cannot be passed in a launch: the child's would use the default"))
        }
        try InheritedObject.encode(
            self, kind: "MessageQueue", descriptor: inheritableDescriptor, parameters: [maxMessageSize, capacity],
            waitStrategy: waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "MessageQueue", parameters: 2)
        try self.init(
            inheriting: object.descriptor, maxMessageSize: object.parameters[0], capacity: object.parameters[1],
            waitStrategy: object.waitStrategy)
    }
}

extension SharedDictionary: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "SharedDictionary", descriptor: inheritableDescriptor, waitStrategy: store.waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "SharedDictionary")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension SharedList: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(self, kind: "SharedList", descriptor: inheritableDescriptor, waitStrategy: store.waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "SharedList")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension Namespace: Codable {
    /// Encodes the object into a launch argument, for a child to inherit (see `Process`).
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "Namespace", descriptor: inheritableDescriptor, waitStrategy: attributes.store.waitStrategy, to: encoder)
    }

    /// Attaches, in a child, the object a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Namespace")
        try self.init(inheriting: object.descriptor, waitStrategy: object.waitStrategy)
    }
}

extension Pipe: Codable {
    /// Encodes the pipe into a launch argument, for a child to inherit (see `Process`): the
    /// child takes its end with ``Pipe/connection(_:waitStrategy:)``, as a Python child uses
    /// the `Connection` it was handed. The pipe travels, not a connection: an end belongs to
    /// the process that takes it.
    public func encode(to encoder: any Encoder) throws {
        try InheritedObject.encode(
            self, kind: "Pipe", descriptor: inheritableDescriptor, parameters: [isDuplex ? 1 : 0, maxMessageSize, capacity],
            to: encoder)
    }

    /// Attaches, in a child, the pipe a launch argument carries.
    public convenience init(from decoder: any Decoder) throws {
        let object = try InheritedObject(from: decoder, kind: "Pipe", parameters: 3)
        try self.init(
            inheriting: object.descriptor, duplex: object.parameters[0] != 0, maxMessageSize: object.parameters[1],
            capacity: object.parameters[2])
    }
}
