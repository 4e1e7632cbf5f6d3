#!/usr/bin/env python3
"""Writes the seed corpus for decode_batch: Kafka RecordBatch v2 batches
built by kafka-python's own builder (`kafka.record.default_records`), an
implementation nobody here wrote, so the seeds also cross-check annals'
decoder against Kafka's format. One seed per compression codec, compressed
by kafka-python's own codecs (`kafka.codec`).

Run with an interpreter that has kafka-python (`.ci/run` makes one):
    target/pyenv/bin/python fuzz/make_seeds.py
"""
import os
import struct

from kafka.record.default_records import DefaultRecordBatchBuilder


def batch(base, records, producer=(-1, -1, -1), codec=0):
    pid, epoch, seq = producer
    b = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=0, producer_id=pid,
                                  producer_epoch=epoch, base_sequence=seq, batch_size=1 << 20)
    for i, (ts, key, value, headers) in enumerate(records):
        b.append(i, timestamp=ts, key=key, value=value, headers=headers)
    out = b.build()
    # The base offset is the broker's to stamp, outside the CRC (the
    # builder leaves 0); the leader epoch stays as the builder wrote it.
    struct.pack_into(">q", out, 0, base)
    return bytes(out)


here = os.path.join(os.path.dirname(__file__), 'corpus', 'decode_batch')
os.makedirs(here, exist_ok=True)
seeds = {
    'one-record': batch(0, [(1000, None, b'hello', [])]),
    'keyed-tombstone-headers': batch(42, [(5, b'k', b'v', [('h', b'x')]), (4, b'k', None, [('n', None)])],
                                     producer=(7, 0, 11)),
    'hundred': batch(7, [(1_700_000_000_000 + i, None, bytes([i]) * 100, []) for i in range(100)]),
}
compressible = [(1_700_000_000_000 + i, b'key-%d' % (i % 5), b'value %d ' % (i % 3) * 20, [('h', b'x')])
                for i in range(50)]
for name, codec in [('gzip', 1), ('snappy', 2), ('lz4', 3), ('zstd', 4)]:
    seeds['compressed-' + name] = batch(100, compressible, codec=codec)
    assert seeds['compressed-' + name][22] & 7 == codec, name  # kafka-python compressed it
for name, data in seeds.items():
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)
