#!/usr/bin/env python3
"""Writes the seed corpus for decode_batch: valid batches encoded by this
independent implementation of docs/FORMAT.md (so the seeds also cross-check
the documented layout against the Rust decoder)."""
import os, struct, zlib

def uvar(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7f) | 0x80); n >>= 7
    out.append(n)
    return bytes(out)

def zz(n):
    return uvar((n << 1) ^ (n >> 63) if n >= 0 else ((n << 1) ^ -1) & (2**64 - 1))

def opt(b):
    return b'\x00' if b is None else uvar(len(b) + 1) + b

def batch(base, records, epoch=-1):
    first = records[0][0]
    body = bytearray()
    for i, (ts, key, value, headers) in enumerate(records):
        rec = bytes([0]) + zz(ts - first) + uvar(i) + opt(key) + opt(value) + uvar(len(headers))
        for name, hv in headers:
            rec += uvar(len(name)) + name + opt(hv)
        body += uvar(len(rec)) + rec
    length = 64 + len(body)
    tail = struct.pack('<IBBHIIqqqhhi', length, 1, 0, 0, len(records) - 1, len(records),
                       first, max(r[0] for r in records), -1, -1, 0, -1) + bytes(body)
    return struct.pack('<qiI', base, epoch, zlib.crc32(tail)) + tail

here = os.path.join(os.path.dirname(__file__), 'corpus', 'decode_batch')
os.makedirs(here, exist_ok=True)
seeds = {
    'one-record': batch(0, [(1000, None, b'hello', [])]),
    'keyed-tombstone-headers': batch(42, [(5, b'k', b'v', [(b'h', b'x')]), (4, b'k', None, [(b'n', None)])]),
    'hundred': batch(7, [(1_700_000_000_000 + i, None, bytes([i]) * 100, []) for i in range(100)]),
}
for name, data in seeds.items():
    with open(os.path.join(here, name), 'wb') as f:
        f.write(data)
