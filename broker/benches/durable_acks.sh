#!/usr/bin/env bash
# What durable acks cost: PRODUCERS librdkafka producers (kcat, one
# connection each, linger.ms=5) writing RECORDS x 100 B in all to one
# partition of a default topic (write.caching=false: acks=-1 answered once
# fsynced, through group commit), with acks=1 and with acks=-1, alternating
# in each round on a fresh broker. Prints records/s of each and the ratio
# acks=-1 / acks=1 (the issue's target: >= 0.8x at 8 producers).
#
# Run: bash broker/benches/durable_acks.sh [ROUNDS] [PRODUCERS]   (needs kcat)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
producers="${2:-8}"
records=800000
command -v kcat >/dev/null || { echo "kcat is needed: apt-get install -y kcat" >&2; exit 1; }
cargo build --release -q -p annals-broker

input=target/durable-acks-input.txt
per=$((records / producers))
if [ ! -s "$input" ] || [ "$(wc -l <"$input")" -ne "$per" ]; then
  python3 broker/benches/bench_input.py "$input" "$per"
fi

port=19193
now() { date +%s.%N; }
run_one() {
  local acks=$1 dir
  dir=$(mktemp -d)
  target/release/annals-broker --dir "$dir" --listen "127.0.0.1:$port" 2>/dev/null &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  kcat -b "127.0.0.1:$port" -L -t bench >/dev/null 2>&1  # creates the topic (no configs: durable acks)
  local t0 t1
  t0=$(now)
  for _ in $(seq "$producers"); do
    kcat -b "127.0.0.1:$port" -t bench -P -p 0 -l "$input" -X acks="$acks" -X linger.ms=5 \
      -X batch.num.messages=10000 -X queue.buffering.max.messages=1000000 &
  done
  wait $(jobs -p | grep -v "^$pid$")
  t1=$(now)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  python3 -c "print('%.0f' % ($per * $producers / ($t1 - $t0)))"
}

for round in $(seq "$rounds"); do
  one=$(run_one 1)
  all=$(run_one -1)
  python3 -c "print('round $round, $producers producers: acks=1 %s records/s, acks=-1 (durable) %s records/s, ratio %.2fx' % ($one, $all, $all / $one))"
done
