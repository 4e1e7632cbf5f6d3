#!/usr/bin/env python3
"""kafka-python's own producer and consumer against annals-broker.

  kafka_python_client.py HOST:PORT

For every codec (none, gzip, snappy, lz4, zstd): an idempotent producer
(acks=all) sends 500 keyed records; a consumer assigned to the partition
reads them back from offset 0: every record, in order, exact bytes.
Prints one line per codec; exits non-zero on any difference.
"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap = sys.argv[1]
for codec in [None, "gzip", "snappy", "lz4", "zstd"]:
    topic = "py-%s" % (codec or "none")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=codec, linger_ms=5,
                             enable_idempotence=True)
    sent = [producer.send(topic, key=b"k%d" % i, value=(b"value %d " % i) * 5) for i in range(500)]
    producer.flush()
    offsets = [f.get(timeout=10).offset for f in sent]
    assert offsets == list(range(500)), (codec, offsets[:5])
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=3000)
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    got = [(m.offset, m.key, m.value) for m in consumer]
    consumer.close()
    want = [(i, b"k%d" % i, (b"value %d " % i) * 5) for i in range(500)]
    assert got == want, (codec, len(got), got[:2])
    print("%s: 500 records produced (acks=all, idempotent) and consumed" % (codec or "none"))
