"""What the connection pipeline buys: ONE confluent-kafka (librdkafka)
producer, acks=all, max.in.flight=5, on a flush.messages=1 topic (every
append fsynced before it is answered), against annals-broker with its
pipeline (--max-in-flight-requests-per-connection 16, the default) and
without it (1: Kafka's one request at a time), alternating in each round
on a fresh broker. Batches are kept small (batch.num.messages, default 16)
so that the rate is bound by requests answered per second, which is what
the pipeline changes, not by the Python loop that feeds the producer.
Prints records/s of each and the ratio (the issue's target: >= 3x).

Run: target/pyenv/bin/python broker/benches/pipeline.py [ROUNDS] [RECORDS] [BATCH]
(INFLIGHT=N sets the producer's max.in.flight, default 5)
(builds nothing: run `cargo build --release -p annals-broker` first)
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
RECORDS = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
BATCH = int(sys.argv[3]) if len(sys.argv) > 3 else 16
IN_FLIGHT = int(os.environ.get("INFLIGHT", "5"))
BROKER = "target/release/annals-broker"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()


def wait_port():
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the broker did not start")


def run_one(in_flight):
    with tempfile.TemporaryDirectory() as data:
        broker = subprocess.Popen(
            [BROKER, "--dir", data, "--listen", f"127.0.0.1:{PORT}",
             "--max-in-flight-requests-per-connection", str(in_flight)],
            stderr=subprocess.DEVNULL)
        try:
            wait_port()
            servers = f"127.0.0.1:{PORT}"
            admin = AdminClient({"bootstrap.servers": servers})
            topic = NewTopic("bench", 1, 1, config={"flush.messages": "1"})
            for f in admin.create_topics([topic]).values():
                f.result(10)
            producer = Producer({
                "bootstrap.servers": servers, "acks": "all",
                "max.in.flight.requests.per.connection": IN_FLIGHT,
                "linger.ms": 5, "batch.num.messages": BATCH,
                "queue.buffering.max.messages": 1_000_000,
            })
            failed = []
            value = b"x" * 100

            def report(err, _msg):
                if err is not None:
                    failed.append(err)

            started = time.monotonic()
            for _ in range(RECORDS):
                while True:
                    try:
                        producer.produce("bench", value, partition=0, on_delivery=report)
                        break
                    except BufferError:
                        producer.poll(0.001)
                producer.poll(0)
            if producer.flush(120) != 0:
                raise SystemExit("records left unsent")
            elapsed = time.monotonic() - started
            if failed:
                raise SystemExit(f"{len(failed)} deliveries failed: {failed[0]}")
            return RECORDS / elapsed
        finally:
            broker.terminate()
            broker.wait()


for r in range(1, ROUNDS + 1):
    on = run_one(16)
    off = run_one(1)
    print(f"round {r}, 1 producer, max.in.flight={IN_FLIGHT}, batches of {BATCH}, flush.messages=1: "
          f"pipeline {on:.0f} records/s, off {off:.0f} records/s, ratio {on / off:.2f}x", flush=True)
