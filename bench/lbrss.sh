#!/usr/bin/env bash
# bench/lbrss.sh — resident memory (RSS) of statelab lb and of HAProxy holding
# many idle keep-alive client connections. Usage (from the repository root):
#
#   bench/lbrss.sh                 # 10,000 connections (fewer if the open-files limit is low)
#   CONNS=20000 bench/lbrss.sh
#
# For each proxy in turn: start it in front of two tiny backends, read its
# RSS (/proc/PID/status VmRSS), open CONNS connections with bench/idleconns
# (one answered GET each, then idle), wait for the memory to settle, read the
# RSS again, and stop it; the last columns are the RSS per connection and the
# RSS at 10,000 connections (measured, or extrapolated from the per-connection
# figure when fewer were opened). HAProxy needs an open-files limit of
# 2 × CONNS + 300; the script raises it if it may, else measures as many
# connections as the limit allows. Installs haproxy with apt-get when missing.
set -euo pipefail

SETTLE=${SETTLE:-3}
BASE_PORT=${BASE_PORT:-19080}

cd "$(dirname "$0")/.."

# HAProxy refuses to start unless the open-files limit covers two
# descriptors per connection of its maxconn (CONNS + 100) and a few more.
need=$((2 * ${CONNS:-10000} + 300))
if [ "$(ulimit -n)" -lt "$need" ]; then
	ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ -z "${CONNS:-}" ] && [ "$(ulimit -n)" -lt "$need" ]; then
	CONNS=$((($(ulimit -n) - 300) / 2))
	echo "open-files limit $(ulimit -n) (hard limit): measuring $CONNS connections; the 10,000 column extrapolates" >&2
fi
CONNS=${CONNS:-10000}
if [ "$(ulimit -n)" -lt $((2 * CONNS + 300)) ]; then
	echo "open-files limit $(ulimit -n) is below $((2 * CONNS + 300)): raise it (ulimit -n) or lower CONNS" >&2
	exit 2
fi
# shellcheck source=bench/common.sh
. bench/common.sh
need_tools haproxy

B1=$((BASE_PORT + 1)) B2=$((BASE_PORT + 2)) P_LB=$((BASE_PORT + 10)) P_ADMIN=$((BASE_PORT + 11)) P_HA=$((BASE_PORT + 20))

go build -o "$tmp/statelab" ./cmd/statelab
go build -o "$tmp/backend" ./bench/backend
go build -o "$tmp/idleconns" ./bench/idleconns

"$tmp/backend" -listen 127.0.0.1:$B1 -id b1 & pids+=($!)
"$tmp/backend" -listen 127.0.0.1:$B2 -id b2 & pids+=($!)

haproxy_cfg $((CONNS + 100)) 300s $B1 $B2 127.0.0.1:$P_HA >"$tmp/haproxy.cfg"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# measure NAME PORT CMD...: starts the proxy, prints its RSS idle and with CONNS connections.
measure() {
	local name=$1 port=$2 pid cpid before after
	shift 2
	"$@" >"$tmp/$name.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { cat "$tmp/$name.log" >&2; exit 1; }
	sleep 1
	before=$(rss_kib "$pid")
	"$tmp/idleconns" -addr "127.0.0.1:$port" -n "$CONNS" >"$tmp/idle.out" &
	cpid=$!
	for _ in $(seq 600); do
		grep -q '^ready' "$tmp/idle.out" 2>/dev/null && break
		kill -0 "$cpid" 2>/dev/null || { echo "idleconns failed against $name" >&2; exit 1; }
		sleep 0.1
	done
	grep -q '^ready' "$tmp/idle.out" || { echo "idleconns never got ready against $name" >&2; exit 1; }
	sleep "$SETTLE"
	after=$(rss_kib "$pid")
	local open
	open=$(ls /proc/"$pid"/fd | wc -l)
	kill "$cpid"; wait "$cpid" 2>/dev/null || true
	kill "$pid"; wait "$pid" 2>/dev/null || true
	awk -v n="$name" -v b="$before" -v a="$after" -v c="$CONNS" -v fds="$open" 'BEGIN {
		printf "%-9s %10.1f %12.1f %14.2f %14.1f %8d\n", n, b / 1024, a / 1024, (a - b) / c, (b + (a - b) / c * 10000) / 1024, fds }'
}

echo "nproc=$(nproc)  conns=$CONNS  $(go version | awk '{print $3}')  $(haproxy -v | head -1 | awk '{print "haproxy", $3}')  load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-9s %10s %12s %14s %14s %8s\n" proxy idle_MiB "${CONNS}_MiB" KiB_per_conn at_10000_MiB open_fds
measure statelab $P_LB "$tmp/statelab" lb --listen 127.0.0.1:$P_LB --admin 127.0.0.1:$P_ADMIN \
	--policy round_robin --backend b1=http://127.0.0.1:$B1 --backend b2=http://127.0.0.1:$B2
measure lb-epoll $P_LB "$tmp/statelab" lb --engine epoll --listen 127.0.0.1:$P_LB --admin 127.0.0.1:$P_ADMIN \
	--policy round_robin --backend b1=http://127.0.0.1:$B1 --backend b2=http://127.0.0.1:$B2
measure haproxy $P_HA haproxy -f "$tmp/haproxy.cfg" -db
