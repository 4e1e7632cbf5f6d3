#!/usr/bin/env bash
# librdkafka (through kcat) producing 1M x 100 B records into annals-broker
# (acks=1, batching on: linger.ms=5, batch.num.messages=10000), then
# consuming them all, next to the same client against the same broker
# built with its storage replaced by a discarding sink (--cfg
# discard_sink: produced batches counted and dropped, fetches answered
# with the last batch restamped). Rounds alternate the two; the ratio
# annals / sink shows what the storage costs behind the protocol.
#
# Run: bash broker/benches/librdkafka.sh [ROUNDS]   (needs kcat)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
records=1000000
command -v kcat >/dev/null || { echo "kcat is needed: apt-get install -y kcat" >&2; exit 1; }

cargo build --release -q -p annals-broker
cp target/release/annals-broker target/release/annals-broker-store
# The sink build: a cfg, in its own target directory (never a feature).
RUSTFLAGS="--cfg discard_sink" cargo build --release -q -p annals-broker --target-dir target/discard-sink
cp target/discard-sink/release/annals-broker target/release/annals-broker-sink

input=target/librdkafka-bench-input.txt
if [ ! -s "$input" ]; then
  python3 broker/benches/bench_input.py "$input" "$records"
fi

port=19192
now() { date +%s.%N; }
run_one() {
  local kind=$1 dir
  dir=$(mktemp -d)
  "target/release/annals-broker-$kind" --dir "$dir" --listen "127.0.0.1:$port" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  kcat -b "127.0.0.1:$port" -L -t bench >/dev/null 2>&1  # creates the topic
  local t0 t1 t2
  t0=$(now)
  kcat -b "127.0.0.1:$port" -t bench -P -p 0 -l "$input" -X acks=1 -X linger.ms=5 -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000
  t1=$(now)
  local got
  got=$(kcat -b "127.0.0.1:$port" -t bench -p 0 -C -o beginning -c "$records" -e -X fetch.max.bytes=52428800 -f '\n' | wc -l)
  t2=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  [ "$got" -ge "$records" ] || { echo "$kind: consumed $got of $records" >&2; exit 1; }
  python3 -c "
import sys
p, c = $t1 - $t0, $t2 - $t1
n = $records
print('%s produce %.0f records/s %.1f MB/s  consume %.0f records/s %.1f MB/s' % ('$kind', n / p, n * 100 / p / 1e6, n / c, n * 100 / c / 1e6))
"
}

for round in $(seq "$rounds"); do
  echo "-- round $round"
  run_one store
  run_one sink
done
