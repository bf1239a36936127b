#!/usr/bin/env bash
# One run split over several processes on one box, merged: SHARDS_N `ssebench run --shard K/N` processes (each under
# the per-process descriptor limit) against as many `ssebench serve` processes on different ports, all started
# together with `--start-at`, holding SHARDS_STREAMS endless streams (one 100-byte event per second each) for
# SHARDS_HOLD_S seconds after a ramp at SHARDS_RATE new streams/s over the whole run, from source addresses
# 127.0.0.1-127.0.0.8. Prints the merged figures, the generator's and the servers' memory per stream, and the
# generators' CPU per event.
#
#   bash benches/shards.sh                                      # 95,000 streams: 5 x 19,000, 60 s held
#   SHARDS_STREAMS=20000 SHARDS_N=2 SHARDS_HOLD_S=10 bash benches/shards.sh
set -euo pipefail
cd "$(dirname "$0")/.."

streams=${SHARDS_STREAMS:-95000}
n=${SHARDS_N:-5}
hold_s=${SHARDS_HOLD_S:-60}
rate=${SHARDS_RATE:-4000}
port=${SHARDS_PORT:-18600}

cargo build --release --quiet
bin=target/release/ssebench
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
servers=()
trap 'kill "${servers[@]}" 2>/dev/null; rm -rf "$dir"' EXIT

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

urls=()
for k in $(seq 0 $((n - 1))); do
    "$bin" serve --addr "127.0.0.1:$((port + k))" --events 0 --interval 1s --size 100 >/dev/null 2>&1 &
    servers+=($!)
    urls+=("http://127.0.0.1:$((port + k))/")
done
sleep 1
server_before=0
for pid in "${servers[@]}"; do server_before=$((server_before + $(rss_kib "$pid"))); done

ramp_s=$(( streams / rate + 1 ))
duration_s=$(( ramp_s + hold_s ))
start_at=$(( $(date +%s) + 3 ))
for k in $(seq 0 $((n - 1))); do
    # Each generator's user + system CPU, from getrusage of the child, into cpu-K.
    python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{r.ru_utime + r.ru_stime}\n")
sys.exit(rc)' "$dir/cpu-$k" "$bin" run "${urls[@]}" -c "$streams" -d "${duration_s}s" --connect-rate "$rate" \
        --bind 127.0.0.1-127.0.0.8 --shard "$k/$n" --start-at "$start_at" -q --json "$dir/shard-$k.json" \
        >/dev/null 2>"$dir/err-$k" &
done
# The servers' memory while every stream is held: halfway through the hold.
sleep $(( 3 + ramp_s + hold_s / 2 ))
server_held=0
for pid in "${servers[@]}"; do server_held=$((server_held + $(rss_kib "$pid"))); done
wait_failed=0
for job in $(jobs -p); do
    case " ${servers[*]} " in *" $job "*) continue ;; esac
    wait "$job" || wait_failed=1
done
[ "$wait_failed" = 0 ] || { cat "$dir"/err-*; echo "shards: a generator failed" >&2; exit 1; }

"$bin" merge "$dir"/shard-*.json --json "$dir/merged.json" >/dev/null
python3 - "$dir" "$n" "$streams" "$server_before" "$server_held" <<'EOF'
import json, sys
d, n, streams, before_kib, held_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = json.load(open(f"{d}/merged.json"))
shards = [json.load(open(f"{d}/shard-{k}.json")) for k in range(n)]
cpu_s = sum(float(open(f"{d}/cpu-{k}").read()) for k in range(n))
s, e = m["streams"], m["events"]
gen_bytes = sum((r["memory"]["rss_peak_kib"] - r["memory"]["rss_before_kib"]) * 1024 for r in shards if r.get("memory"))
print(f"shards {n}, streams {streams}: started {s['started']}, failed {s['failed']}, held at the end {s['interrupted']}, "
      f"peak {s['peak_concurrent']} (sum of the shards' peaks)")
print(f"events {e['received']} ({e['per_second']:.0f}/s over {m['duration_s']:.1f} s, ramp included); "
      f"failures {[(k, v) for k, v in s['failures'].items() if v]}")
print(f"generator memory {gen_bytes / max(s['peak_concurrent'], 1):.0f} B per stream (peak - before, summed over shards); "
      f"servers {(held_kib - before_kib) * 1024 / streams:.0f} B per stream")
print(f"generator CPU {cpu_s:.1f} s in all, {cpu_s / max(e['received'], 1) * 1e6:.1f} us per event (ramp and connects included)")
print("start lateness (us): " + ", ".join(str(r.get("start_at", {}).get("late_us")) for r in shards))
gens = [p.get("saturated") for p in m.get("parts", [])]
print(f"generators saturated: {gens}")
EOF
