#!/usr/bin/env python3
"""A kafka-python consumer group against annals-broker.

  kafka_python_group.py HOST:PORT produce N    N keyed records into "grp"
  kafka_python_group.py HOST:PORT consume N    two members of group "g";
      one leaves mid-stream; prints one JSON line of what each consumed
  kafka_python_group.py HOST:PORT resume M     a new member of "g" after a
      restart: consumes the M records produced since, and nothing before

Every member commits synchronously after each poll, so a rebalance hands a
partition over at its committed offset: every record exactly once.
"""
import json
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer

bootstrap, phase, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
TOPIC = "grp"


def consumer(name):
    return KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="g", client_id=name,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         session_timeout_ms=10000, heartbeat_interval_ms=500, max_poll_records=50)


def drain(c, seen, stop):
    while not stop():
        batch = c.poll(timeout_ms=200)
        for tp, records in batch.items():
            seen.extend((tp.partition, r.offset, r.value.decode()) for r in records)
        if batch:
            c.commit()


if phase == "produce" or phase == "resume":
    first = 0 if phase == "produce" else 1_000_000
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(first, first + n):
        p.send(TOPIC, key=b"k%d" % i, value=b"%d" % i)
    p.flush()
    p.close()

if phase == "consume":
    a_seen, b_seen = [], []
    a, b = consumer("a"), consumer("b")
    b_done = threading.Event()
    ta = threading.Thread(target=drain, args=(a, a_seen, lambda: len(a_seen) + len(b_seen) >= n))
    def run_b():
        drain(b, b_seen, lambda: len(b_seen) >= n // 10 or len(a_seen) + len(b_seen) >= n)
        b.close()  # LeaveGroup mid-stream
        b_done.set()
    tb = threading.Thread(target=run_b)
    ta.start(); tb.start()
    deadline = time.time() + 120
    while ta.is_alive() and time.time() < deadline:
        time.sleep(0.2)
    ta.join(1); tb.join(1)
    a.close()
    print(json.dumps({"a": a_seen, "b": b_seen, "b_left": b_done.is_set()}))

if phase == "resume":
    c = consumer("c")
    seen = []
    deadline = time.time() + 60
    drain(c, seen, lambda: len(seen) >= n or time.time() > deadline)
    time.sleep(1)
    seen.extend((tp.partition, r.offset, r.value.decode()) for tp, rs in c.poll(timeout_ms=1000).items() for r in rs)
    c.close()
    print(json.dumps({"c": seen}))
