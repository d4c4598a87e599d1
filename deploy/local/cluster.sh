#!/bin/sh
# A statelab cluster of separate processes on this machine: one `statelab lb`
# in front of `statelab app` replicas r1, r2, ... This is a deployment the lab
# did not start, to try `statelab lab --target` on (docs/deploy.md):
#
#   deploy/local/cluster.sh start DIR STRATEGY   # naive|sticky|cache|database|client
#   statelab lab --strategy sticky --scenario failover \
#       --target http://127.0.0.1:8080 --target-admin http://127.0.0.1:9090 \
#       --kill-cmd 'kill -9 $(cat DIR/{id}.pid)'
#   deploy/local/cluster.sh stop DIR
#
# Environment:
#   STATELAB    the statelab binary (default: statelab on PATH)
#   LB_PORT     the balancer's port (default 8080); ADMIN_PORT its admin API's (9090)
#   APP_PORTS   one replica per port, r1 on the first (default "8081 8082 8083")
#   APP_FLAGS   more flags for every replica, e.g. "--work 20ms --max-inflight 2"
#   REDIS_URL   the cache strategy's Redis (default redis://127.0.0.1:6379/0);
#               keys are prefixed with DIR's name and this shell's pid
#   STATELAB_SECRET  key the client strategy's replicas share (default: random)
# Every process writes DIR/NAME.pid and DIR/NAME.log (NAME: lb, r1, r2, ...).
set -eu

usage() {
	echo "usage: $0 start DIR naive|sticky|cache|database|client | $0 stop DIR" >&2
	exit 2
}

# stop DIR: SIGTERM every process the start wrote a pid file for, then
# SIGKILL what is left after five seconds.
stop() {
	for f in "$1"/*.pid; do
		[ -e "$f" ] || continue
		kill "$(cat "$f")" 2>/dev/null || true
	done
	i=0
	while [ $i -lt 50 ]; do
		alive=0
		for f in "$1"/*.pid; do
			[ -e "$f" ] || continue
			if kill -0 "$(cat "$f")" 2>/dev/null; then alive=1; fi
		done
		[ $alive -eq 1 ] || break
		sleep 0.1
		i=$((i + 1))
	done
	for f in "$1"/*.pid; do
		[ -e "$f" ] || continue
		kill -9 "$(cat "$f")" 2>/dev/null || true
		rm -f "$f"
	done
}

# launch NAME ARGS...: start statelab ARGS in the background, logging to
# DIR/NAME.log, its pid in DIR/NAME.pid.
launch() {
	name=$1
	shift
	"$STATELAB" "$@" </dev/null >"$DIR/$name.log" 2>&1 &
	echo $! >"$DIR/$name.pid"
}

# ready URL: wait (at most 20 s) until URL answers 200.
ready() {
	i=0
	until "$STATELAB" healthcheck --url "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -ge 200 ]; then
			echo "$0: $1 did not become ready; see $DIR/*.log" >&2
			stop "$DIR"
			exit 1
		fi
		sleep 0.1
	done
}

[ $# -ge 2 ] || usage
cmd=$1
DIR=$2
case $cmd in
stop)
	stop "$DIR"
	exit 0
	;;
start) [ $# -eq 3 ] || usage ;;
*) usage ;;
esac
STRATEGY=$3
STATELAB=${STATELAB:-statelab}
LB_PORT=${LB_PORT:-8080}
ADMIN_PORT=${ADMIN_PORT:-9090}
APP_PORTS=${APP_PORTS:-8081 8082 8083}
APP_FLAGS=${APP_FLAGS:-}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

policy=round_robin
case $STRATEGY in
naive) store="--store memory" ;;
sticky) store="--store memory" policy=sticky ;;
cache) store="--store redis --redis ${REDIS_URL:-redis://127.0.0.1:6379/0} --redis-prefix statelab-local:$(basename "$DIR"):$$:" ;;
database) store="--store sqlite --sqlite $DIR/sessions.db" ;;
client)
	store="--store cookie"
	STATELAB_SECRET=${STATELAB_SECRET:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
	export STATELAB_SECRET
	;;
*) usage ;;
esac

backends=""
n=0
for port in $APP_PORTS; do
	n=$((n + 1))
	# $store and $APP_FLAGS are split into words on purpose.
	# shellcheck disable=SC2086
	launch "r$n" app --listen "127.0.0.1:$port" --id "r$n" $store $APP_FLAGS
	backends="$backends --backend r$n=http://127.0.0.1:$port"
done
n=0
for port in $APP_PORTS; do
	n=$((n + 1))
	ready "http://127.0.0.1:$port/readyz"
done
# shellcheck disable=SC2086
launch lb lb --listen "127.0.0.1:$LB_PORT" --admin "127.0.0.1:$ADMIN_PORT" --policy "$policy" \
	--health-path /readyz --health-interval 200ms $backends
ready "http://127.0.0.1:$ADMIN_PORT/healthz"
echo "statelab $STRATEGY: balancer http://127.0.0.1:$LB_PORT, admin http://127.0.0.1:$ADMIN_PORT, replicas r1..r$n; pids and logs in $DIR"
