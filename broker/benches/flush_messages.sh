#!/usr/bin/env bash
# Durable produce through the broker against the engine's own figure at
# the same concurrency: PRODUCERS librdkafka producers (kcat, one
# connection each, acks=all) each sending one 100 B record per request
# with one request in flight (batch.num.messages=1, max.in.flight=1,
# linger.ms=0), to one partition of a flush.messages=1 topic (every append
# fsynced, through group commit), next to `annals perf produce
# --durability always --batch 1` with as many producer threads (one
# record per append call, fsynced, the engine's Always path). Alternating
# in each round, each on a fresh directory. Prints records/s of each and
# the ratio broker / engine (the issue's target: >= 0.8x at 1, 8 and 32).
#
# IN_FLIGHT=5 lets each producer keep 5 requests in flight (the broker's
# pipeline overlaps their fsyncs); records stay one per request.
#
# Run: bash broker/benches/flush_messages.sh [ROUNDS] [PRODUCERS...]
#      (default 3 rounds of 1 8 32; needs kcat)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
shift || true
counts=("${@:-1 8 32}")
in_flight="${IN_FLIGHT:-1}"
read -r -a counts <<<"${counts[*]}"
command -v kcat >/dev/null || { echo "kcat is needed: apt-get install -y kcat" >&2; exit 1; }
cargo build --release -q -p annals-broker --bin annals-broker
cargo build --release -q --bin annals

port=19194
now() { date +%s.%N; }
# Records per producer: about two seconds of fsyncs at each concurrency.
per_producer() { case $1 in 1) echo 4000 ;; *) echo $((16000 / $1 + 500)) ;; esac; }

engine_one() {
  local producers=$1 dir per
  per=$(per_producer "$producers")
  dir=$(mktemp -d)
  target/release/annals perf produce --dir "$dir" --topic bench --partitions 1 --durability always \
    --batch 1 --producers "$producers" --records $((per * producers)) --json |
    python3 -c 'import json,sys; print("%.0f" % json.loads(sys.stdin.read().strip().splitlines()[-1])["records_per_sec"])'
  rm -rf "$dir"
}

broker_one() {
  local producers=$1 dir per input pid t0 t1
  per=$(per_producer "$producers")
  input=target/flush-messages-input-$per.txt
  [ -s "$input" ] || python3 broker/benches/bench_input.py "$input" "$per"
  dir=$(mktemp -d)
  # The topic made by the engine's CLI with Always (flush.messages=1), one record in it.
  target/release/annals perf produce --dir "$dir" --topic bench --partitions 1 --durability always \
    --records 1 >/dev/null
  target/release/annals-broker --dir "$dir" --listen "127.0.0.1:$port" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  t0=$(now)
  local producer_pids=()
  for _ in $(seq "$producers"); do
    kcat -b "127.0.0.1:$port" -t bench -P -p 0 -l "$input" -X acks=all -X linger.ms=0 \
      -X batch.num.messages=1 -X max.in.flight="$in_flight" &
    producer_pids+=($!)
  done
  wait "${producer_pids[@]}"
  t1=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  python3 -c "print('%.0f' % ($per * $producers / ($t1 - $t0)))"
}

for producers in "${counts[@]}"; do
  for round in $(seq "$rounds"); do
    engine=$(engine_one "$producers")
    broker=$(broker_one "$producers")
    python3 -c "print('round $round, $producers producers, flush.messages=1, one record per request, $in_flight in flight: engine Always %s records/s, broker acks=all %s records/s, broker/engine %.2fx' % ($engine, $broker, $broker / $engine))"
  done
done
