import TensorRuntime

/// CRC-32C (Castagnoli), as TFRecord files checksum their records.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked form: rotated right by 15 bits plus a constant, so that a CRC stored in
    /// data that is checksummed again does not weaken the check.
    static func masked(_ bytes: some Sequence<UInt8>) -> UInt32 {
        let crc = checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }
}

/// TFRecord framing: length (u64 LE), masked CRC of the length, the data, masked CRC of the data.
enum TFRecord {
    static func frame(_ data: [UInt8]) -> [UInt8] {
        let length = littleEndian(UInt64(data.count))
        return length + littleEndian(CRC32C.masked(length)) + data + littleEndian(CRC32C.masked(data))
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}

/// The TensorFlow messages, by field number (tensorflow/core/util/event.proto and
/// tensorflow/core/framework/summary.proto).
enum TensorBoardEvent {
    /// Event { wall_time = 1; step = 2; file_version = 3 }.
    static func fileVersion(wallTime: Double) -> [UInt8] {
        var w = ProtobufWriter()
        w.double(1, wallTime)
        w.string(3, "brain.Event:2")
        return w.bytes
    }

    /// Event { wall_time = 1; step = 2; summary = 5 { value = 1 { tag = 1; simple_value = 2 } ... } }.
    static func scalars(_ values: [(String, Double)], step: Int, wallTime: Double) -> [UInt8] {
        var w = ProtobufWriter()
        w.double(1, wallTime)
        w.int(2, step)
        w.message(5) { summary in
            for (tag, value) in values {
                summary.message(1) { v in
                    v.string(1, tag)
                    v.float(2, Float(value))
                }
            }
        }
        return w.bytes
    }

    /// Event { ...; summary = 5 { value = 1 { tag = 1; image = 4 { height = 1; width = 2;
    /// colorspace = 3; encoded_image_string = 4 } } } }.
    static func image(tag: String, png: [UInt8], width: Int, height: Int, channels: Int, step: Int, wallTime: Double) -> [UInt8] {
        var w = ProtobufWriter()
        w.double(1, wallTime)
        w.int(2, step)
        w.message(5) { summary in
            summary.message(1) { v in
                v.string(1, tag)
                v.message(4) { image in
                    image.int(1, height)
                    image.int(2, width)
                    image.int(3, channels)
                    image.data(4, png)
                }
            }
        }
        return w.bytes
    }
}
