#!/usr/bin/env bash
# ssebench against wrk and h2load, side by side in one run: every client reads the same endless streams from one
# `ssebench serve` on loopback (one 100-byte event per second per stream), at each stream count; for each it prints
# the streams held, the client's CPU (user + system, from /proc) per million events over a steady-state window,
# and its resident memory. Installs wrk and h2load (nghttp2-client) from the distribution's packages when missing.
#
#   bash benches/compare.sh                              # 1,000, 10,000 and 19,000 streams, 20 s windows
#   COMPARE_STREAMS="1000" COMPARE_WINDOW_S=10 bash benches/compare.sh
#   COMPARE_CLIENTS="ssebench wrk" bash benches/compare.sh
#   COMPARE_RUNS=1 bash benches/compare.sh                # one round instead of three
#
# Clients: `ssebench` (default driver: epoll), `ssebench-io_uring`, `ssebench-https` (the same streams over TLS 1.3 from
# a second `serve` with a throw-away ECDSA P-256 certificate made by openssl; its window starts after every handshake),
# `wrk` (raw HTTP: it reads the bytes and parses no event), `h2load` (`--h1`). Events in a window are counted as streams held x window seconds: the server sends each held
# stream one event per second, whoever reads it. The window starts once every stream of the client is open (its
# sockets counted in /proc) and a 3 s settle has passed, so the connect storm is not in it. The clients take turns,
# round after round (COMPARE_RUNS, default 3), so that a slow spell of this shared machine falls on all of them; each
# measurement is printed as it is taken, and at the end the median of each client's rounds at each stream count.
set -euo pipefail
cd "$(dirname "$0")/.."

streams_list=${COMPARE_STREAMS:-"1000 10000 19000"}
window_s=${COMPARE_WINDOW_S:-20}
clients=${COMPARE_CLIENTS:-"ssebench ssebench-io_uring ssebench-https wrk h2load"}
port=${COMPARE_PORT:-18480}
runs=${COMPARE_RUNS:-3}
settle_s=3

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release --quiet
bin=target/release/ssebench
ulimit -n "$(ulimit -Hn)"
ticks=$(getconf CLK_TCK)
url="http://127.0.0.1:$port/"
tls_url="https://localhost:$(( port + 1 ))/"
tls_dir=$(mktemp -d)

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
sockets() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }

# Starts one client for `n` streams lasting `total_s`; prints its pid.
start_client() {
    local client=$1 n=$2 total_s=$3
    case $client in
        ssebench) "$bin" run "$url" -c "$n" -d "${total_s}s" -q >/dev/null 2>&1 & ;;
        ssebench-io_uring) "$bin" run "$url" -c "$n" -d "${total_s}s" -q --driver io_uring >/dev/null 2>&1 & ;;
        ssebench-https) "$bin" run "$tls_url" --cacert "$tls_dir/ca.pem" -c "$n" -d "${total_s}s" -q >/dev/null 2>&1 & ;;
        wrk) wrk -t "$(nproc)" -c "$n" -d "${total_s}s" --timeout 600s "$url" >/dev/null 2>&1 & ;;
        h2load) h2load --h1 -t "$(nproc)" -c "$n" -n "$n" "$url" >/dev/null 2>&1 & ;;
        *) echo "compare: unknown client $client" >&2; exit 2 ;;
    esac
    echo $!
}

# A CA and a certificate for localhost, for the HTTPS server.
(
    cd "$tls_dir"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -subj /CN=compare-ca -days 2 -out ca.pem
    openssl ecparam -name prime256v1 -genkey -noout -out localhost.key
    openssl req -new -key localhost.key -subj /CN=localhost -out localhost.csr
    printf 'subjectAltName=DNS:localhost\n' >san.ext
    openssl x509 -req -in localhost.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext \
        -out localhost.pem
) >/dev/null 2>&1

"$bin" serve --addr "127.0.0.1:$port" --events 0 --interval 1s --size 100 >/dev/null 2>&1 &
server=$!
"$bin" serve --addr "127.0.0.1:$(( port + 1 ))" --events 0 --interval 1s --size 100 \
    --tls-cert "$tls_dir/localhost.pem" --tls-key "$tls_dir/localhost.key" >/dev/null 2>&1 &
tls_server=$!
trap 'kill $server $tls_server 2>/dev/null; rm -rf "$tls_dir"' EXIT
sleep 1

results=$(mktemp)
printf '\n%-18s %8s %8s %14s %10s %12s %6s\n' client streams held "CPU s/1M ev" "RSS MB" "B/stream" round
for round in $(seq 1 "$runs"); do
for n in $streams_list; do
    ramp_s=$(( n / 2000 + 10 ))
    for client in $clients; do
        pid=$(start_client "$client" "$n" $(( ramp_s + settle_s + window_s + 10 )))
        # Wait (up to the ramp's allowance) until every stream's socket is open.
        for _ in $(seq 1 $(( ramp_s * 10 ))); do
            [ "$(sockets "$pid")" -ge "$n" ] && break
            sleep 0.1
        done
        sleep "$settle_s"
        held_start=$(sockets "$pid")
        cpu_start=$(cpu_ticks "$pid")
        sleep "$window_s"
        cpu_end=$(cpu_ticks "$pid")
        held=$(sockets "$pid")
        rss=$(rss_kib "$pid")
        kill -INT "$pid" 2>/dev/null || true
        sleep 0.5
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        held=$(( held < held_start ? held : held_start ))
        held=$(( held < n ? held : n ))  # the client may hold a few sockets of its own (ssebench: its Ctrl-C wake pair)
        awk -v c="$client" -v n="$n" -v h="$held" -v t=$(( cpu_end - cpu_start )) -v hz="$ticks" -v w="$window_s" \
            -v rss="$rss" -v r="$round" 'BEGIN {
                events = h * w
                printf "%-18s %8d %8d %14.1f %10.1f %12.0f %6d\n", c, n, h, (events > 0 ? t / hz / events * 1e6 : 0),
                    rss / 1024, (h > 0 ? rss * 1024 / h : 0), r
            }' | tee -a "$results"
        # Let the server close the last client's streams before the next one connects.
        sleep 2
    done
done
done

# The median of each client's rounds at each stream count (the lower middle of an even count), and the fewest
# streams it held in any round.
printf '\nmedians of %d round(s):\n%-18s %8s %8s %14s %10s %12s\n' "$runs" client streams held "CPU s/1M ev" "RSS MB" \
    "B/stream"
for n in $streams_list; do
    for client in $clients; do
        awk -v c="$client" -v n="$n" '$1 == c && $2 == n { print $3, $4, $5, $6 }' "$results" | sort -k2,2n | awk '
            { held[NR] = $1; cpu[NR] = $2; line[NR] = $0 }
            END {
                if (NR == 0) exit
                min = held[1]; for (i = 2; i <= NR; i++) if (held[i] < min) min = held[i]
                mid = int((NR + 1) / 2)
                split(line[mid], m, " ")
                printf "%-18s %8d %8d %14.1f %10.1f %12.0f\n", "'"$client"'", '"$n"', min, m[2], m[3], m[4]
            }'
    done
done
rm -f "$results"
