#!/usr/bin/env python3
"""Records real Kafka clients' request bytes: the seed corpus of the
broker_protocol fuzz target (fuzz/corpus/broker_protocol/).

A TCP proxy between the clients and annals-broker writes each client
connection's client->broker bytes (size-prefixed request frames, exactly as
on the wire) to one file, `<label>-<n>`: the n-th connection opened while
the client run called <label> was going on. The broker advertises the
proxy's address, so the connections a client opens after the bootstrap one
(to "broker 0", to the group coordinator) go through the proxy too. Every
address is on 127.0.0.1. Python's standard library only; the clients are
run as programs.

How fuzz/corpus/broker_protocol/ was made (from the repository's root;
`.ci/run` makes target/pyenv, kcat and Go with sarama come from apt):

    cargo build --release -p annals-broker
    python3 fuzz/capture_frames.py capture --out fuzz/corpus/broker_protocol --replace
    python3 fuzz/capture_frames.py summarize fuzz/corpus/broker_protocol

`capture` starts the broker (`--default-partitions 2`) on a fresh directory
and the proxy, runs each client in CLIENT_RUNS below in turn against the
proxy (kcat with api.version.request=true; kafka-python 3.0.12 producing
with acks=all, idempotence and each codec, a consumer group committing, its
admin client; confluent-kafka's producer, consumer group and admin client;
sarama 1.22 from Debian, built from broker/tests/clients/sarama_client.go),
then drops empty files and byte-identical duplicates. A client run that
fails is reported and its connections are kept: what it sent is still a
real client's bytes. Records are few and small, so that the corpus stays
small and every frame is far below the fuzz target's 1 MiB frame limit.

Other subcommands:

    capture_frames.py proxy --listen 127.0.0.1:9093 --upstream 127.0.0.1:9092 --out DIR --label NAME
        only the proxy, until interrupted (start the broker yourself with
        --advertised-listener 127.0.0.1:9093)
    capture_frames.py summarize PATH...
        the frames of each file: API key and version counts, and any bytes
        after the last whole frame
"""
import argparse
import collections
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# One connection's recorded bytes past this are a runaway client: the
# connection is cut and nothing is written (seeds must stay small).
CONNECTION_BYTES_MAX = 8 << 20
# A client run, and the wait for its connections to close afterwards.
CLIENT_SECONDS_MAX = 120
IDLE_SECONDS_MAX = 15

# Kafka's API keys, for `summarize`.
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 32: "DescribeConfigs",
    33: "AlterConfigs", 36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups",
    44: "IncrementalAlterConfigs", 60: "DescribeCluster", 68: "ConsumerGroupHeartbeat",
}


def loopback(hostport):
    """(host, port) of a 127.0.0.1 address; anything else is refused."""
    host, _, port = hostport.rpartition(":")
    if host != "127.0.0.1":
        raise SystemExit("capture_frames: %s: only 127.0.0.1 addresses are used" % hostport)
    return host, int(port)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """Accepts on `listen`, forwards each connection to `upstream`, and
    writes what the client sent to `out/<label>-<n>` when it closes."""

    def __init__(self, listen, upstream, out):
        self.upstream, self.out = upstream, out
        self.server = socket.create_server(listen)
        self.lock = threading.Condition()
        self.label, self.counts, self.open = "unlabelled", collections.Counter(), 0
        self.written = []
        threading.Thread(target=self._accept, daemon=True).start()

    def relabel(self, label):
        with self.lock:
            self.label = label

    def wait_idle(self, seconds):
        """True once every connection has closed and been written."""
        deadline = time.time() + seconds
        with self.lock:
            while self.open and time.time() < deadline:
                self.lock.wait(0.1)
            return self.open == 0

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            with self.lock:
                self.counts[self.label] += 1
                name = "%s-%d" % (self.label, self.counts[self.label])
                self.open += 1
            threading.Thread(target=self._connection, args=(client, name), daemon=True).start()

    def _connection(self, client, name):
        sent = bytearray()
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError as e:
            print("capture_frames: %s: upstream: %s" % (name, e), file=sys.stderr)
            client.close()
            self._closed(None, name)
            return
        back = threading.Thread(target=self._pump, args=(upstream, client, None))
        back.start()
        complete = self._pump(client, upstream, sent)
        back.join()
        client.close()
        upstream.close()
        self._closed(bytes(sent) if complete else None, name)

    @staticmethod
    def _pump(src, dst, record):
        """Copies src to dst until src ends, appending to `record`; then
        half-closes dst. False if the recording outgrew its bound."""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if record is not None:
                    record += chunk
                    if len(record) > CONNECTION_BYTES_MAX:
                        return False
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return True

    def _closed(self, sent, name):
        if sent is None:
            print("capture_frames: %s: not written (no upstream, or over %d bytes)"
                  % (name, CONNECTION_BYTES_MAX), file=sys.stderr)
        elif sent:
            with open(os.path.join(self.out, name), "wb") as f:
                f.write(sent)
        with self.lock:
            if sent:
                self.written.append(name)
            self.open -= 1
            self.lock.notify_all()


def frames(data):
    """[(api_key, api_version)] of each whole frame, and the bytes left after them."""
    out, at = [], 0
    while at + 4 <= len(data):
        (size,) = struct.unpack_from(">i", data, at)
        if size < 4 or at + 4 + size > len(data):
            break
        out.append(struct.unpack_from(">hh", data, at + 4))
        at += 4 + size
    return out, len(data) - at


# Client programs for the Python interpreter of target/pyenv; argv[1] is the
# proxy's address. Few, small records: the seeds stay small.
KAFKA_PYTHON_PRODUCE = """
import sys
from kafka import KafkaProducer
codec = None if sys.argv[2] == "none" else sys.argv[2]
p = KafkaProducer(bootstrap_servers=sys.argv[1], acks="all", enable_idempotence=True,
                  compression_type=codec, linger_ms=5)
futures = [p.send("kp-" + sys.argv[2], key=b"k%d" % (i % 3), value=b"value %d " % i * 4,
                  headers=[("seq", b"%d" % i), ("empty", b"")]) for i in range(10)]
p.flush()
print([f.get(timeout=10).offset for f in futures])
p.close()
"""

KAFKA_PYTHON_GROUP = """
import sys, time
from kafka import KafkaConsumer
c = KafkaConsumer("kp-none", "kp-gzip", bootstrap_servers=sys.argv[1], group_id="kp-group",
                  client_id="kp-member", enable_auto_commit=False, auto_offset_reset="earliest",
                  session_timeout_ms=10000, heartbeat_interval_ms=500)
got, deadline = 0, time.time() + 60
while got < 20 and time.time() < deadline:
    batch = c.poll(timeout_ms=500)
    got += sum(len(rs) for rs in batch.values())
    if batch:
        c.commit()
print("consumed", got)
c.close()
assert got == 20, got
"""

KAFKA_PYTHON_ADMIN = """
import sys
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
a = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="kp-admin")
failed = 0
def step(name, f):
    global failed
    try:
        print(name, f())
    except Exception as e:
        failed += 1
        print("%s failed: %r" % (name, e), file=sys.stderr)
step("create_topics", lambda: a.create_topics([NewTopic("kp-admin", 3, 1)]))
step("describe_configs", lambda: a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin"),
                                                     ConfigResource(ConfigResourceType.BROKER, "0")]))
step("describe_cluster", a.describe_cluster)
step("describe_log_dirs", a.describe_log_dirs)
step("list_groups", a.list_groups)
step("describe_groups", lambda: a.describe_groups(["kp-group"]))
step("list_group_offsets", lambda: a.list_group_offsets("kp-group"))
step("delete_groups", lambda: a.delete_groups(["kp-group"]))
step("delete_topics", lambda: a.delete_topics(["kp-admin"]))
a.close()
sys.exit(1 if failed else 0)
"""

CONFLUENT_PRODUCE = """
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True, "acks": "all",
              "compression.type": "zstd", "linger.ms": 5})
acked = []
for i in range(20):
    p.produce("ck", key=b"k%d" % (i % 4), value=b"value %d " % i * 4, headers=[("seq", b"%d" % i)],
              on_delivery=lambda err, m: acked.append(err))
assert p.flush(30) == 0
assert acked == [None] * 20, acked
print("acked", len(acked))
"""

CONFLUENT_GROUP = """
import sys, time
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "ck-group", "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe(["ck"])
got, deadline = 0, time.time() + 60
while got < 20 and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    got += 1
    c.commit(message=m, asynchronous=False)
c.close()
print("consumed", got)
assert got == 20, got
"""

CONFLUENT_ADMIN = """
import sys
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for topic, f in a.create_topics([NewTopic("ck-admin", 3, 1)], operation_timeout=10).items():
    f.result(10)
print(sorted(a.list_topics(timeout=10).topics))
for r, f in a.describe_configs([ConfigResource("topic", "ck-admin"), ConfigResource("broker", "0")]).items():
    print(r, len(f.result(10)))
"""


def client_runs(proxy, python, sarama):
    """(label, argv, stdin) of each client run, in order: later runs read
    what earlier ones wrote."""
    kcat = ["kcat", "-b", proxy, "-X", "api.version.request=true"]
    lines = b"".join(b"key-%d:value %d\n" % (i % 5, i) for i in range(20))
    runs = [
        ("kcat-metadata", kcat + ["-L"], None),
        ("kcat-produce", kcat + ["-t", "kcat", "-K", ":", "-H", "source=kcat", "-P"], lines),
        ("kcat-consume", kcat + ["-t", "kcat", "-C", "-e", "-o", "beginning"], None),
    ]
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        runs.append(("kafka-python-produce-" + codec, [python, "-c", KAFKA_PYTHON_PRODUCE, proxy, codec], None))
    runs += [
        ("kafka-python-group", [python, "-c", KAFKA_PYTHON_GROUP, proxy], None),
        ("kafka-python-admin", [python, "-c", KAFKA_PYTHON_ADMIN, proxy], None),
        ("confluent-produce", [python, "-c", CONFLUENT_PRODUCE, proxy], None),
        ("confluent-group", [python, "-c", CONFLUENT_GROUP, proxy], None),
        ("confluent-admin", [python, "-c", CONFLUENT_ADMIN, proxy], None),
        ("sarama-produce", [sarama, proxy, "sarama", "2", "20", "5"], None),
        ("sarama-consume", [sarama, proxy, "kcat", "read"], None),
    ]
    return runs


def build_sarama(into):
    """broker/tests/clients/sarama_client.go built against Debian's sarama."""
    binary = os.path.join(into, "sarama_client")
    env = dict(os.environ, GO111MODULE="off", GOPATH="/usr/share/gocode", GOCACHE=os.path.join(into, "go-build"))
    source = os.path.join(ROOT, "broker", "tests", "clients", "sarama_client.go")
    subprocess.run(["go", "build", "-o", binary, source], env=env, check=True, stderr=subprocess.DEVNULL)
    return binary


def dedupe(out, names):
    """Removes byte-identical repeats (the first by name order stays)."""
    seen = {}
    for name in names:
        path = os.path.join(out, name)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if digest in seen:
            os.remove(path)
            print("  %s: the same bytes as %s, dropped" % (name, seen[digest]))
        else:
            seen[digest] = name
    return sorted(seen.values())


def capture(args):
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if os.listdir(out):
        if not args.replace:
            raise SystemExit("capture_frames: %s is not empty (--replace empties it)" % out)
        for name in os.listdir(out):
            os.remove(os.path.join(out, name))
    with tempfile.TemporaryDirectory() as work:
        sarama = build_sarama(work)
        broker_addr = ("127.0.0.1", free_port())
        proxy = Proxy(("127.0.0.1", 0), broker_addr, out)
        proxy_addr = "127.0.0.1:%d" % proxy.server.getsockname()[1]
        log = open(os.path.join(work, "broker.log"), "wb")
        broker = subprocess.Popen([args.broker, "--dir", os.path.join(work, "data"),
                                   "--listen", "%s:%d" % broker_addr, "--advertised-listener", proxy_addr,
                                   "--default-partitions", "2", "--group-initial-rebalance-delay-ms", "300"],
                                  stderr=log)
        failed = []
        try:
            deadline = time.time() + 20
            while socket.socket().connect_ex(broker_addr) != 0:
                if time.time() > deadline or broker.poll() is not None:
                    raise SystemExit("capture_frames: the broker did not start")
                time.sleep(0.05)
            for label, argv, stdin in client_runs(proxy_addr, args.python, sarama):
                proxy.relabel(label)
                try:
                    run = subprocess.run(argv, input=stdin, capture_output=True, timeout=CLIENT_SECONDS_MAX)
                    ok, why = run.returncode == 0, run.stderr.decode(errors="replace").strip()
                except subprocess.TimeoutExpired:
                    ok, why = False, "still running after %d s" % CLIENT_SECONDS_MAX
                if not proxy.wait_idle(IDLE_SECONDS_MAX):
                    failed.append((label, "connections still open %d s after it ended" % IDLE_SECONDS_MAX))
                print("%s: %s" % (label, "ok" if ok else "FAILED"))
                if not ok:
                    failed.append((label, why.splitlines()[-1] if why else "exit %d" % run.returncode))
        finally:
            broker.terminate()
            broker.wait()
            log.close()
            refused = [l for l in open(os.path.join(work, "broker.log"), errors="replace")
                       if "refused" in l or "WARN" in l or "ERROR" in l]
    kept = dedupe(out, sorted(proxy.written))
    total = sum(os.path.getsize(os.path.join(out, n)) for n in kept)
    print("%d files, %d bytes in %s" % (len(kept), total, out))
    for label, why in failed:
        print("client run %s failed (its connections are kept): %s" % (label, why))
    for line in refused:
        print("broker: " + line.rstrip())


def summarize(args):
    paths = []
    for p in args.paths:
        paths += sorted(os.path.join(p, n) for n in os.listdir(p)) if os.path.isdir(p) else [p]
    total = collections.Counter()
    for path in paths:
        data = open(path, "rb").read()
        found, left = frames(data)
        total.update(found)
        each = collections.Counter(found)
        line = " ".join("%s v%d x%d" % (API_NAMES.get(k, k), v, n) for (k, v), n in sorted(each.items()))
        print("%s (%d bytes): %s%s" % (os.path.basename(path), len(data), line,
                                       "; %d bytes after the last whole frame" % left if left else ""))
    print("all %d files:" % len(paths))
    for (key, version), n in sorted(total.items()):
        print("  %2d %-16s v%-2d %4d" % (key, API_NAMES.get(key, "?"), version, n))


def proxy_only(args):
    os.makedirs(args.out, exist_ok=True)
    proxy = Proxy(loopback(args.listen), loopback(args.upstream), args.out)
    proxy.relabel(args.label)
    print("proxying %s -> %s into %s/%s-N; interrupt to stop" % (args.listen, args.upstream, args.out, args.label))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        proxy.wait_idle(IDLE_SECONDS_MAX)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("capture", help="the whole corpus: broker, proxy and every client run")
    c.add_argument("--out", default=os.path.join(HERE, "corpus", "broker_protocol"))
    c.add_argument("--replace", action="store_true", help="empty --out first")
    c.add_argument("--broker", default=os.path.join(ROOT, "target", "release", "annals-broker"))
    c.add_argument("--python", default=os.path.join(ROOT, "target", "pyenv", "bin", "python"))
    c.set_defaults(run=capture)
    p = sub.add_parser("proxy", help="only the proxy, until interrupted")
    p.add_argument("--listen", required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--label", required=True)
    p.set_defaults(run=proxy_only)
    s = sub.add_parser("summarize", help="API keys and versions of each file's frames")
    s.add_argument("paths", nargs="+")
    s.set_defaults(run=summarize)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
