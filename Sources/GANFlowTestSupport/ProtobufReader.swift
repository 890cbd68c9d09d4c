/// Decodes protobuf messages into their fields, for tests that check what an encoder wrote.
public struct ProtobufField: Equatable, Sendable {
    public enum Value: Equatable, Sendable {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
        case fixed32(UInt32)
    }

    public var number: Int
    public var value: Value

    public var int: Int? { if case .varint(let v) = value { Int(Int64(bitPattern: v)) } else { nil } }
    public var bytes: [UInt8]? { if case .bytes(let b) = value { b } else { nil } }
    public var string: String? { bytes.map { String(decoding: $0, as: UTF8.self) } }
    public var float: Float? { if case .fixed32(let v) = value { Float(bitPattern: v) } else { nil } }
    /// The values of a packed `repeated int64` field.
    public var packedInts: [Int]? {
        guard let b = bytes else { return nil }
        var out: [Int] = [], v: UInt64 = 0, shift: UInt64 = 0
        for byte in b {
            v |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                out.append(Int(Int64(bitPattern: v)))
                (v, shift) = (0, 0)
            } else {
                shift += 7
            }
        }
        return out
    }
    /// The fields of a nested message.
    public var message: [ProtobufField]? { bytes.flatMap { try? decodeProtobuf($0) } }
}

public struct ProtobufDecodeError: Error, Equatable { public let offset: Int }

/// Every field of `bytes`, in order; throws where the encoding is broken.
public func decodeProtobuf(_ bytes: [UInt8]) throws -> [ProtobufField] {
    var i = 0
    func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard i < bytes.count, shift < 64 else { throw ProtobufDecodeError(offset: i) }
            let b = bytes[i]
            i += 1
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }
    func fixed(_ n: Int) throws -> UInt64 {
        guard i + n <= bytes.count else { throw ProtobufDecodeError(offset: i) }
        var v: UInt64 = 0
        for k in 0..<n { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        i += n
        return v
    }
    var fields: [ProtobufField] = []
    while i < bytes.count {
        let key = try varint()
        let number = Int(key >> 3)
        guard number > 0 else { throw ProtobufDecodeError(offset: i) }
        switch key & 7 {
        case 0: fields.append(ProtobufField(number: number, value: .varint(try varint())))
        case 1: fields.append(ProtobufField(number: number, value: .fixed64(try fixed(8))))
        case 2:
            let n = Int(try varint())
            guard n >= 0, i + n <= bytes.count else { throw ProtobufDecodeError(offset: i) }
            fields.append(ProtobufField(number: number, value: .bytes(Array(bytes[i..<(i + n)]))))
            i += n
        case 5: fields.append(ProtobufField(number: number, value: .fixed32(UInt32(try fixed(4)))))
        default: throw ProtobufDecodeError(offset: i)
        }
    }
    return fields
}

extension [ProtobufField] {
    /// The fields numbered `number`.
    public func all(_ number: Int) -> [ProtobufField] { filter { $0.number == number } }
    public func first(_ number: Int) -> ProtobufField? { first { $0.number == number } }
}
