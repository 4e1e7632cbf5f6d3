#!/usr/bin/env python3
"""confluent-kafka (librdkafka) against annals-broker.

  confluent_client.py HOST:PORT produce TOPIC N
      an idempotent producer (acks=all, partitioner=murmur2_random, so keys
      land where Java's client puts them) sends N keyed records; prints one
      JSON line: [[key, partition, offset], ...] of what was acknowledged
  confluent_client.py HOST:PORT stream TOPIC SECONDS
      the same, sending for SECONDS (the broker may be killed meanwhile;
      the producer retries); prints what was acknowledged
  confluent_client.py HOST:PORT consume TOPIC N GROUP
      a member of GROUP reads until it has N records (committing each
      message synchronously) or 60 s pass; prints [[key, partition, offset], ...]
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, mode, topic = sys.argv[1], sys.argv[2], sys.argv[3]
acked = []


def producer():
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "partitioner": "murmur2_random", "linger.ms": 5, "message.timeout.ms": 60000,
                     "retry.backoff.ms": 100, "reconnect.backoff.max.ms": 500})


def delivered(err, msg):
    if err is None:
        acked.append([msg.key().decode(), msg.partition(), msg.offset()])
    else:
        print("delivery failed: %s" % err, file=sys.stderr)


if mode in ("produce", "stream"):
    p = producer()
    limit = int(sys.argv[4])
    start, i = time.time(), 0
    while (mode == "produce" and i < limit) or (mode == "stream" and time.time() - start < limit):
        key = "key-%d" % i
        while True:
            try:
                p.produce(topic, key=key, value=("value %d" % i).encode(), on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        i += 1
        if mode == "stream":
            p.poll(0)
            time.sleep(0.001)
    left = p.flush(60)
    assert left == 0, "%d messages not delivered" % left
    print(json.dumps(acked))

if mode == "consume":
    want, group = int(sys.argv[4]), sys.argv[5]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, deadline = [], time.time() + 60
    while len(got) < want and time.time() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        got.append([m.key().decode(), m.partition(), m.offset()])
        c.commit(message=m, asynchronous=False)
    c.close()
    print(json.dumps(got))
