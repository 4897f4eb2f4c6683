"""Independent reader of TensorBoard event files, for pkg/tfevents' tests.

Usage: read_events.py EVENTS_FILE REENCODED_OUT

Checks every record's framing (uint64 length, masked CRC-32C of the length, data, masked CRC-32C of
the data) with a CRC-32C computed here from its table, decodes each record with Python's protobuf
library (Debian's python3-protobuf) from message descriptors built below to match TensorBoard's
event.proto and summary.proto, prints the events as JSON, and writes the events re-serialized by
that library and re-framed to REENCODED_OUT, so the caller can compare the bytes with its own.
"""
import json
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
TABLE = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value (RFC 3720, B.4)


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data):
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


def event_class():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="event.proto", package="tensorboard", syntax="proto3")
    summary = fdp.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL, oneof_index=0)
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".tensorboard.Summary.Value")
    event = fdp.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                    type_name=".tensorboard.Summary", oneof_index=0)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("tensorboard.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def main(path, out):
    Event = event_class()
    raw = open(path, "rb").read()
    events, reencoded, pos = [], b"", 0
    while pos < len(raw):
        if len(raw) - pos < 12:
            sys.exit("%s: torn record header at byte %d" % (path, pos))
        header = raw[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", raw[pos + 8:pos + 12])
        if hcrc != masked(header):
            sys.exit("%s: bad length CRC at byte %d" % (path, pos))
        data = raw[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack("<I", raw[pos + 12 + length:pos + 16 + length])
        if len(data) != length or dcrc != masked(data):
            sys.exit("%s: bad data CRC at byte %d" % (path, pos))
        pos += 16 + length
        ev = Event()
        ev.ParseFromString(data)
        events.append({
            "wall_time": ev.wall_time,
            "step": ev.step,
            "what": ev.WhichOneof("what") or "",
            "file_version": ev.file_version,
            "values": [[v.tag, v.simple_value] for v in ev.summary.value],
        })
        reencoded += frame(ev.SerializeToString())
    open(out, "wb").write(reencoded)
    json.dump(events, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
