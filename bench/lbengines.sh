#!/usr/bin/env bash
# bench/lbengines.sh — statelab lb's two engines against HAProxy in
# bench/lb.sh's keep-alive setup (two bench/backend backends, round robin,
# wrk -t1 -c64), in one run: "statelab" is --engine fasthttp, "lb-epoll"
# --engine epoll. Usage (from the repository root):
#
#   bench/lbengines.sh                         # ROUNDS=5 DURATION=6s
#   ROUNDS=7 QUERY="?size=4096" bench/lbengines.sh
#   CLOSE=1 bench/lbengines.sh                # a new connection per request
#
# Rounds are interleaved across the targets; CPU µs per request is the
# proxy's utime+stime (/proc/PID/stat) over the run divided by the requests.
set -euo pipefail

DURATION=${DURATION:-6s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
QUERY=${QUERY:-}
BASE_PORT=${BASE_PORT:-19400}
CLOSE=${CLOSE:-}
wrkargs=()
[ -n "$CLOSE" ] && wrkargs=(-H "Connection: close")

cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
. bench/common.sh
need_tools wrk haproxy curl

B1=$((BASE_PORT + 1)) B2=$((BASE_PORT + 2)) P_LB=$((BASE_PORT + 10)) P_ADMIN=$((BASE_PORT + 11))
P_HA=$((BASE_PORT + 20))

go build -o "$tmp/statelab" ./cmd/statelab
go build -o "$tmp/backend" ./bench/backend

"$tmp/backend" -listen 127.0.0.1:$B1 -id b1 & pids+=($!)
"$tmp/backend" -listen 127.0.0.1:$B2 -id b2 & pids+=($!)
"$tmp/statelab" lb --listen 127.0.0.1:$P_LB --admin 127.0.0.1:$P_ADMIN --policy round_robin \
	--backend b1=http://127.0.0.1:$B1 --backend b2=http://127.0.0.1:$B2 2>"$tmp/statelab.log" &
pids+=($!)
declare -A pidof url
pidof[statelab]=$! url[statelab]=http://127.0.0.1:$P_LB/$QUERY
"$tmp/statelab" lb --engine epoll --listen 127.0.0.1:$((P_LB + 2)) --admin 127.0.0.1:$((P_ADMIN + 2)) --policy round_robin \
	--backend b1=http://127.0.0.1:$B1 --backend b2=http://127.0.0.1:$B2 2>"$tmp/statelab-epoll.log" &
pids+=($!)
pidof[lb-epoll]=$! url[lb-epoll]=http://127.0.0.1:$((P_LB + 2))/$QUERY

haproxy_cfg 4096 60s $B1 $B2 127.0.0.1:$P_HA >"$tmp/haproxy.cfg"
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 & pids+=($!)
pidof[haproxy]=$! url[haproxy]=http://127.0.0.1:$P_HA/$QUERY

targets=(statelab lb-epoll haproxy)

for t in "${targets[@]}"; do
	for _ in $(seq 100); do curl -fsS -o /dev/null "${url[$t]}" 2>/dev/null && break; sleep 0.1; done
	curl -fsS -o /dev/null "${url[$t]}" || { echo "no answer from $t at ${url[$t]}" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)

echo "nproc=$(nproc) rounds=$ROUNDS duration=$DURATION conns=$CONNS query=$QUERY $(go version | awk '{print $3}') load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %-9s %10s %8s %8s %8s\n" round target req/s p50_ms p99_ms cpu_us
declare -A rps p99 cpu
for r in $(seq "$ROUNDS"); do
	for t in "${targets[@]}"; do
		wrk -t1 -c"$CONNS" -d1s "${wrkargs[@]}" "${url[$t]}" >/dev/null
		c0=$(cpu_ticks "${pidof[$t]}")
		out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${wrkargs[@]}" "${url[$t]}")
		c1=$(cpu_ticks "${pidof[$t]}")
		q=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		n=$(awk '/ requests in / {print $1}' <<<"$out")
		l50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
		l99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
		us=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f", (b - a) / hz * 1e6 / n}')
		errs=$(awk '/Non-2xx|Socket errors/' <<<"$out")
		[ -n "$errs" ] && echo "  $t: $errs" >&2
		rps[$t]+="$q "; p99[$t]+="$l99 "; cpu[$t]+="$us "
		printf "%-6s %-9s %10.0f %8.3f %8.3f %8s\n" "$r" "$t" "$q" "$l50" "$l99" "$us"
	done
done
echo "medians over $ROUNDS rounds (ratios to haproxy's medians):"
printf "%-9s %10s %8s %8s %8s %8s %8s\n" target req/s ratio p99_ms p99_x cpu_us cpu_x
for t in "${targets[@]}"; do
	awk -v t="$t" -v q="$(median "${rps[$t]}")" -v hq="$(median "${rps[haproxy]}")" \
		-v p="$(median "${p99[$t]}")" -v hp="$(median "${p99[haproxy]}")" \
		-v c="$(median "${cpu[$t]}")" -v hc="$(median "${cpu[haproxy]}")" \
		'BEGIN {printf "%-9s %10.0f %7.2fx %8.3f %7.2fx %8.1f %7.2fx\n", t, q, q / hq, p, p / hp, c, c / hc}'
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
