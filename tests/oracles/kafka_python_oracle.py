#!/usr/bin/env python3
"""An independent Kafka v2 codec for annals' tests: kafka-python's own
(`kafka.record`), not annals' code.

  decode DIR     every .log file under DIR (sorted), every batch decoded and
                 CRC-checked by kafka-python (decompressed by its own codecs,
                 `kafka.codec`); prints one JSON line per record, with the
                 codec id of its batch
  build OUT [CODEC]
                 batches built by kafka-python's DefaultRecordBatchBuilder
                 (several producers and sequences, headers, null keys and
                 values), compressed with CODEC (none, gzip, snappy, lz4,
                 zstd; default none), written back to back to OUT; prints
                 one JSON line per record it put in them, in order

Keys, values and header values are hex strings, or null.
"""
import json
import os
import sys

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords


CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def hexed(b):
    return None if b is None else bytes(b).hex()


def decode(root):
    logs = []
    for d, _, files in os.walk(root):
        logs += [os.path.join(d, f) for f in files if f.endswith(".log")]
    for path in sorted(logs):
        with open(path, "rb") as f:
            data = f.read()
        records = MemoryRecords(data)
        pos = 0
        while records.has_next():
            batch = records.next_batch()
            if not batch.validate_crc():
                sys.exit("CRC mismatch in %s at byte %d" % (path, pos))
            for r in batch:
                print(json.dumps({
                    "file": os.path.relpath(path, root),
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": hexed(r.key),
                    "value": hexed(r.value),
                    "headers": [[k, hexed(v)] for k, v in r.headers],
                    "codec": batch.compression_type,
                }))
            pos += batch.size_in_bytes
        if records.valid_bytes() != len(data):
            sys.exit("%s: %d trailing bytes kafka-python cannot read" % (path, len(data) - records.valid_bytes()))


def build(out, codec="none"):
    t0 = 1_700_000_000_000
    plan = [
        # (producer id, epoch, first sequence, records)
        (-1, -1, -1, [(None, b"plain", [])]),
        (1000, 0, 0, [(b"k1", b"v1", [("h", b"x")]), (None, b"keyless", []), (b"k2", None, [("n", None)])]),
        (2000, 3, 0, [(b"a", b"first", [])]),
        (1000, 0, 3, [(b"k1", b"v1-again", [("h1", b"1"), ("h2", b"")]), (b"k3", b"x" * 300, [])]),
        (2000, 3, 1, [(b"b", b"second", []), (b"c", None, [])]),
        (-1, -1, -1, [(b"big-%d" % i, bytes([i]) * 100, []) for i in range(100)]),
    ]
    expected = []
    with open(out, "wb") as f:
        for pid, epoch, seq, records in plan:
            builder = DefaultRecordBatchBuilder(
                magic=2, compression_type=CODECS[codec], is_transactional=0, producer_id=pid,
                producer_epoch=epoch, base_sequence=seq, batch_size=1 << 20)
            for i, (key, value, headers) in enumerate(records):
                if codec != "none" and len(records) == 100:
                    value = (b"compressible value %d " % (i % 10)) * 5  # what codecs are for
                ts = t0 + len(expected) * 7 - (i % 3)  # not monotonic within a batch
                builder.append(i, timestamp=ts, key=key, value=value, headers=headers)
                expected.append({
                    "timestamp": ts, "key": hexed(key), "value": hexed(value),
                    "headers": [[k, hexed(v)] for k, v in headers],
                    "producer_id": pid,
                })
            f.write(bytes(builder.build()))
    for e in expected:
        print(json.dumps(e))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"decode": decode, "build": build}[cmd](*args)
