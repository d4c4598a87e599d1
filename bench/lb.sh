#!/usr/bin/env bash
# bench/lb.sh — statelab lb vs HAProxy vs nginx in front of the same two
# backends, measured with wrk. Usage (from the repository root):
#
#   bench/lb.sh                       # 3 rounds of 10 s per target
#   ROUNDS=5 DURATION=20s bench/lb.sh
#
# Installs wrk, haproxy and nginx with apt-get when missing. Everything listens
# on loopback; configs and logs go to a temp dir removed at exit. Rounds are
# interleaved (direct, statelab, haproxy, nginx, direct, ...) so that other
# load on the machine affects every target alike.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-18080}

cd "$(dirname "$0")/.."

missing=()
for p in wrk haproxy nginx; do
	command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}" >&2
	SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

tmp=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

B1=$((BASE_PORT + 1)) B2=$((BASE_PORT + 2))
P_LB=$((BASE_PORT + 10)) P_ADMIN=$((BASE_PORT + 11)) P_HA=$((BASE_PORT + 20)) P_NG=$((BASE_PORT + 30))

go build -o "$tmp/statelab" ./cmd/statelab
go build -o "$tmp/backend" ./bench/backend

"$tmp/backend" -listen 127.0.0.1:$B1 -id b1 & pids+=($!)
"$tmp/backend" -listen 127.0.0.1:$B2 -id b2 & pids+=($!)

"$tmp/statelab" lb --listen 127.0.0.1:$P_LB --admin 127.0.0.1:$P_ADMIN --policy round_robin \
	--backend b1=http://127.0.0.1:$B1 --backend b2=http://127.0.0.1:$B2 2>"$tmp/statelab.log" & pids+=($!)

cat >"$tmp/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$P_HA
    default_backend be
backend be
    balance roundrobin
    http-reuse always
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
CFG
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 & pids+=($!)

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<CFG
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    upstream be {
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$P_NG;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CFG
nginx -c "$tmp/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' 2>"$tmp/nginx.stderr" & pids+=($!)

targets=(direct statelab haproxy nginx)
declare -A url=(
	[direct]=http://127.0.0.1:$B1/
	[statelab]=http://127.0.0.1:$P_LB/
	[haproxy]=http://127.0.0.1:$P_HA/
	[nginx]=http://127.0.0.1:$P_NG/
)

for t in "${targets[@]}"; do
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "${url[$t]}" 2>/dev/null && break
		sleep 0.1
	done
	curl -fsS -o /dev/null "${url[$t]}" || { echo "$t does not answer at ${url[$t]}" >&2; exit 1; }
done

# to_ms converts a wrk duration (812.00us, 1.20ms, 1.01s) to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else print v }'
}

declare -A rps p50 p99 last
ratios=""
echo "nproc=$(nproc)  wrk -t$THREADS -c$CONNS -d$DURATION  rounds=$ROUNDS  $(go version | awk '{print $3}')"
printf "%-6s %-9s %12s %9s %9s\n" round target req/s p50_ms p99_ms
for r in $(seq "$ROUNDS"); do
	for t in "${targets[@]}"; do
		# a short warm-up fills connection pools
		wrk -t1 -c"$CONNS" -d1s "${url[$t]}" >/dev/null
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${url[$t]}")
		q=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		l50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
		l99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
		errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
		[ -n "$errs" ] && echo "  $t: $errs" >&2
		rps[$t]+="$q "; p50[$t]+="$l50 "; p99[$t]+="$l99 "
		printf "%-6s %-9s %12.0f %9.3f %9.3f\n" "$r" "$t" "$q" "$l50" "$l99"
		last[$t]=$q
	done
	ratios+="$(awk -v s="${last[statelab]}" -v h="${last[haproxy]}" 'BEGIN {printf "%.3f", s / h}') "
done

# median of a space-separated list
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo
echo "median over $ROUNDS rounds:"
printf "%-9s %12s %9s %9s\n" target req/s p50_ms p99_ms
declare -A m
for t in "${targets[@]}"; do
	m[$t]=$(median "${rps[$t]}")
	printf "%-9s %12.0f %9.3f %9.3f\n" "$t" "${m[$t]}" "$(median "${p50[$t]}")" "$(median "${p99[$t]}")"
done
echo
awk -v s="${m[statelab]}" -v h="${m[haproxy]}" -v n="${m[nginx]}" 'BEGIN {
	printf "statelab/haproxy = %.2fx   statelab/nginx = %.2fx\n", s / h, s / n }'
echo "statelab/haproxy per round: $ratios(median $(median "$ratios")x)"
awk -v s50="$(median "${p50[statelab]}")" -v d50="$(median "${p50[direct]}")" \
	-v s99="$(median "${p99[statelab]}")" -v d99="$(median "${p99[direct]}")" 'BEGIN {
	printf "latency added by statelab lb over direct access: p50 %+.3f ms, p99 %+.3f ms\n", s50 - d50, s99 - d99 }'
