#!/usr/bin/env bash
# What consuming costs the broker: kcat (librdkafka) produces 1M x 100 B
# records into one partition once, then consumes them all 8 times; the
# broker's task-clock over the consumes (perf stat -p) and the consume
# rate are printed. With two broker binaries it alternates them, round by
# round, so a change to the fetch path is compared within one run (the
# client, on the same two cores, bounds the consume rate; the broker's CPU
# is what a change moves).
#
# Run: bash broker/benches/consume_cpu.sh ROUNDS BIN [BIN2]   (needs kcat, perf)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:?rounds}"
shift
bins=("$@")
[ "${#bins[@]}" -ge 1 ] || { echo "give one or two annals-broker binaries" >&2; exit 1; }
for tool in kcat perf; do
  command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
records=1000000
consumes=8
input=target/librdkafka-bench-input.txt
[ -s "$input" ] || python3 broker/benches/bench_input.py "$input" "$records"
port=19292
now() { date +%s.%N; }
# A round that fails leaves no broker or perf behind.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

run_one() {
  local bin=$1 dir pid perfpid t0 t1 got
  dir=$(mktemp -d)
  "$bin" --dir "$dir" --listen "127.0.0.1:$port" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null || { echo "$bin did not start" >&2; exit 1; }
  kcat -b "127.0.0.1:$port" -L -t bench >/dev/null 2>&1  # creates the topic
  kcat -b "127.0.0.1:$port" -t bench -P -p 0 -l "$input" -X acks=1 -X linger.ms=5 \
    -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000
  sleep 0.5
  perf stat -e task-clock -p "$pid" -o "$dir.perf" &
  perfpid=$!
  sleep 0.2
  t0=$(now)
  for _ in $(seq "$consumes"); do
    got=$(kcat -b "127.0.0.1:$port" -t bench -p 0 -C -o beginning -c "$records" -e \
      -X fetch.max.bytes=52428800 -f '\n' | wc -l)
    [ "$got" -ge "$records" ] || { echo "$bin: consumed $got of $records" >&2; exit 1; }
  done
  t1=$(now)
  kill -INT "$perfpid"; wait "$perfpid" 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local ms
  ms=$(awk '/task-clock/ {print $1}' "$dir.perf")
  rm -rf "$dir" "$dir.perf"
  python3 -c "print('%s: consume %.0f records/s, broker task-clock %s ms for %d records' % ('$bin', $consumes * $records / ($t1 - $t0), '$ms', $consumes * $records))"
}

for round in $(seq "$rounds"); do
  echo "-- round $round"
  for bin in "${bins[@]}"; do run_one "$bin"; done
done
