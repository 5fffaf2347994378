"""tb_read.py RUN_DIR: reads a run folder's TensorBoard event file with
Python's protobuf (the classes protoc makes from proto/tensorboard.proto)
and python3-crc32c, independently of asymbp's writer, and checks it against
log.jsonl: every record's two masked CRC-32Cs, the file-version event
first, then one event per line of log.jsonl, its step the epoch, holding
every number of the line (layers' as KEY/LAYER) as a float32 scalar, and
nothing else. Exits 1 naming the first difference."""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile

import crc32c

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto")


def masked(data):
    c = crc32c.crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    blob = open(path, "rb").read()
    at = 0
    while at < len(blob):
        head = blob[at:at + 8]
        (n,) = struct.unpack("<Q", head)
        (crc_len,) = struct.unpack("<I", blob[at + 8:at + 12])
        data = blob[at + 12:at + 12 + n]
        (crc_data,) = struct.unpack("<I", blob[at + 12 + n:at + 16 + n])
        if crc_len != masked(head):
            sys.exit(f"{path}: record at byte {at}: length CRC mismatch")
        if len(data) != n or crc_data != masked(data):
            sys.exit(f"{path}: record at byte {at}: data CRC mismatch")
        yield data
        at += 16 + n


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def expected(line):
    want = {}
    for k, v in line.items():
        if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool):
            want[k] = f32(v)
        if isinstance(v, list):
            for layer in v:
                for k2, x in layer.items():
                    if isinstance(x, (int, float)) and not isinstance(x, bool):
                        want[f"{k2}/{layer['name']}"] = f32(x)
    return want


def main():
    run = sys.argv[1]
    out = tempfile.mkdtemp()
    subprocess.run(["protoc", f"--python_out={out}", f"-I{PROTO}", os.path.join(PROTO, "tensorboard.proto")], check=True)
    sys.path.insert(0, out)
    import tensorboard_pb2

    files = glob.glob(os.path.join(run, "events.out.tfevents.*"))
    if len(files) != 1:
        sys.exit(f"{run}: {len(files)} event files, expected 1")
    events = []
    for data in records(files[0]):
        ev = tensorboard_pb2.Event()
        ev.ParseFromString(data)
        events.append(ev)
    if not events or events[0].file_version != "brain.Event:2":
        sys.exit(f"{files[0]}: the first event is not the file version")
    lines = [json.loads(s) for s in open(os.path.join(run, "log.jsonl"))]
    if len(events) - 1 != len(lines):
        sys.exit(f"{files[0]}: {len(events) - 1} events for {len(lines)} lines of log.jsonl")
    scalars = 0
    for ev, line in zip(events[1:], lines):
        if ev.step != line["epoch"]:
            sys.exit(f"event step {ev.step} for epoch {line['epoch']}")
        got = {v.tag: v.simple_value for v in ev.summary.value}
        want = expected(line)
        if got != want:
            diff = sorted(set(got.items()) ^ set(want.items()))[:4]
            sys.exit(f"epoch {line['epoch']}: scalars differ: {diff}")
        scalars += len(got)
    print(f"tb_read: {len(lines)} epochs, {scalars} scalars, every CRC and value matches log.jsonl")


main()
