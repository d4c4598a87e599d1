#!/usr/bin/env bash
# bench/lb.sh — statelab lb vs HAProxy (and nginx) in front of the same two
# backends, measured with wrk. Usage (from the repository root):
#
#   bench/lb.sh                                   # every scenario, 5 rounds of 10 s per target
#   SCENARIOS="keepalive close" ROUNDS=7 DURATION=20s bench/lb.sh
#   ENGINE=fasthttp bench/lb.sh                   # statelab lb --engine fasthttp (default: epoll, as statelab lb)
#
# Scenarios (SCENARIOS, space-separated):
#   keepalive  keep-alive HTTP/1.1, 64-byte bodies (also nginx and direct access)
#   close      a new connection per request (wrk -H "Connection: close")
#   4k, 64k    keep-alive, 4 KiB and 64 KiB response bodies
#   tls        keep-alive HTTPS, both proxies terminating TLS with the same
#              ECDSA P-256 certificate (made here with openssl)
#   tls-new    a new TLS connection, so a full handshake, per request
#
# Installs wrk, haproxy and nginx with apt-get when missing. Everything listens
# on loopback; configs and logs go to a temp dir removed at exit. Rounds are
# interleaved (statelab, haproxy, statelab, ...) so that other load on the
# machine affects every target alike. CPU µs per request is the proxy's
# utime+stime (/proc/PID/stat) over the run divided by the requests served.
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-18080}
ENGINE=${ENGINE:-epoll} # statelab lb --engine (epoll is statelab lb's default on Linux)
SCENARIOS=${SCENARIOS:-keepalive close 4k 64k tls tls-new}

cd "$(dirname "$0")/.."

# shellcheck source=bench/common.sh
. bench/common.sh
need_tools wrk haproxy nginx openssl

B1=$((BASE_PORT + 1)) B2=$((BASE_PORT + 2))
P_LB=$((BASE_PORT + 10)) P_ADMIN=$((BASE_PORT + 11)) P_LBS=$((BASE_PORT + 12)) P_ADMINS=$((BASE_PORT + 13))
P_HA=$((BASE_PORT + 20)) P_HAS=$((BASE_PORT + 21)) P_NG=$((BASE_PORT + 30))

go build -o "$tmp/statelab" ./cmd/statelab
go build -o "$tmp/backend" ./bench/backend

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/haproxy.pem"

"$tmp/backend" -listen 127.0.0.1:$B1 -id b1 & pids+=($!)
"$tmp/backend" -listen 127.0.0.1:$B2 -id b2 & pids+=($!)

lb_args=(--engine "$ENGINE" --policy round_robin --backend b1=http://127.0.0.1:$B1 --backend b2=http://127.0.0.1:$B2)
"$tmp/statelab" lb --listen 127.0.0.1:$P_LB --admin 127.0.0.1:$P_ADMIN "${lb_args[@]}" 2>"$tmp/statelab.log" &
pids+=($!); pid_statelab=$!
"$tmp/statelab" lb --listen 127.0.0.1:$P_LBS --admin 127.0.0.1:$P_ADMINS "${lb_args[@]}" \
	--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" 2>"$tmp/statelab-tls.log" &
pids+=($!); pid_statelab_tls=$!

haproxy_cfg 4096 60s $B1 $B2 127.0.0.1:$P_HA "127.0.0.1:$P_HAS ssl crt $tmp/haproxy.pem" >"$tmp/haproxy.cfg"
haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.log" 2>&1 & pids+=($!); pid_haproxy=$!

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
nginx -c "$tmp/nginx.conf" -p "$tmp/nginx" -g 'daemon off;' 2>"$tmp/nginx.stderr" & pids+=($!); pid_nginx=$!

# every URL a scenario may use must answer before measuring
for u in http://127.0.0.1:$B1/ http://127.0.0.1:$P_LB/ https://127.0.0.1:$P_LBS/ \
	http://127.0.0.1:$P_HA/ https://127.0.0.1:$P_HAS/ http://127.0.0.1:$P_NG/; do
	for _ in $(seq 100); do
		curl -kfsS -o /dev/null "$u" 2>/dev/null && break
		sleep 0.1
	done
	curl -kfsS -o /dev/null "$u" || { echo "no answer at $u" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)
summary=""

# scenario NAME: the rounds of one scenario, then its medians and ratios.
scenario() {
	local name=$1 query="" scheme=http wrkargs=() targets=(statelab haproxy)
	local -A url pidsof
	case $name in
	keepalive) targets=(direct statelab haproxy nginx) ;;
	close) wrkargs=(-H "Connection: close") ;;
	4k) query="?size=4096" ;;
	64k) query="?size=65536" ;;
	tls) scheme=https ;;
	tls-new) scheme=https; wrkargs=(-H "Connection: close") ;;
	*) echo "unknown scenario $name" >&2; exit 2 ;;
	esac
	if [ $scheme = https ]; then
		url=([statelab]=https://127.0.0.1:$P_LBS/$query [haproxy]=https://127.0.0.1:$P_HAS/$query)
		pidsof=([statelab]=$pid_statelab_tls [haproxy]=$pid_haproxy)
	else
		url=([direct]=http://127.0.0.1:$B1/$query [statelab]=http://127.0.0.1:$P_LB/$query
			[haproxy]=http://127.0.0.1:$P_HA/$query [nginx]=http://127.0.0.1:$P_NG/$query)
		pidsof=([direct]="" [statelab]=$pid_statelab [haproxy]=$pid_haproxy
			[nginx]="$pid_nginx $(pgrep -P "$pid_nginx" | tr '\n' ' ')")
	fi
	local -A rps p50 p99 cpu last
	local ratios="" r t out q n l50 l99 c0 c1 us errs
	echo
	echo "== $name: wrk -t$THREADS -c$CONNS -d$DURATION ${wrkargs[*]} ${url[statelab]}"
	printf "%-6s %-9s %12s %9s %9s %9s\n" round target req/s p50_ms p99_ms cpu_us
	for r in $(seq "$ROUNDS"); do
		for t in "${targets[@]}"; do
			# a short warm-up fills connection pools
			wrk -t1 -c"$CONNS" -d1s "${wrkargs[@]}" "${url[$t]}" >/dev/null
			# shellcheck disable=SC2086
			c0=$(cpu_ticks ${pidsof[$t]})
			out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${wrkargs[@]}" "${url[$t]}")
			# shellcheck disable=SC2086
			c1=$(cpu_ticks ${pidsof[$t]})
			q=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
			n=$(awk '/ requests in / {print $1}' <<<"$out")
			l50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
			l99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
			us=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f", (b - a) / hz * 1e6 / n}')
			[ -z "${pidsof[$t]}" ] && us=0
			errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
			[ -n "$errs" ] && echo "  $t: $errs" >&2
			rps[$t]+="$q "; p50[$t]+="$l50 "; p99[$t]+="$l99 "; cpu[$t]+="$us "
			printf "%-6s %-9s %12.0f %9.3f %9.3f %9s\n" "$r" "$t" "$q" "$l50" "$l99" "$([ "$us" = 0 ] && echo - || echo "$us")"
			last[$t]=$q
		done
		ratios+="$(awk -v s="${last[statelab]}" -v h="${last[haproxy]}" 'BEGIN {printf "%.3f", s / h}') "
	done
	echo "median over $ROUNDS rounds:"
	printf "%-9s %12s %9s %9s %9s\n" target req/s p50_ms p99_ms cpu_us
	local -A m mp99 mcpu
	for t in "${targets[@]}"; do
		m[$t]=$(median "${rps[$t]}"); mp99[$t]=$(median "${p99[$t]}"); mcpu[$t]=$(median "${cpu[$t]}")
		printf "%-9s %12.0f %9.3f %9.3f %9s\n" "$t" "${m[$t]}" "$(median "${p50[$t]}")" "${mp99[$t]}" "${mcpu[$t]}"
	done
	echo "statelab/haproxy per round: $ratios(median $(median "$ratios")x)"
	if [ "$name" = keepalive ]; then
		awk -v s="${m[statelab]}" -v n="${m[nginx]}" 'BEGIN { printf "statelab/nginx = %.2fx\n", s / n }'
		awk -v s50="$(median "${p50[statelab]}")" -v d50="$(median "${p50[direct]}")" \
			-v s99="${mp99[statelab]}" -v d99="${mp99[direct]}" 'BEGIN {
			printf "latency added by statelab lb over direct access: p50 %+.3f ms, p99 %+.3f ms\n", s50 - d50, s99 - d99 }'
	fi
	summary+="$(awk -v n="$name" -v s="${m[statelab]}" -v h="${m[haproxy]}" -v rr="$(median "$ratios")" \
		-v sp="${mp99[statelab]}" -v hp="${mp99[haproxy]}" -v sc="${mcpu[statelab]}" -v hc="${mcpu[haproxy]}" 'BEGIN {
		printf "%-10s %10.0f %10.0f %6.2fx %6.2fx %9.3f %9.3f %6.2fx %8.1f %8.1f\n", n, s, h, s / h, rr, sp, hp, sp / hp, sc, hc }')"$'\n'
}

echo "nproc=$(nproc)  rounds=$ROUNDS  duration=$DURATION  conns=$CONNS  $(go version | awk '{print $3}')  $(haproxy -v | head -1 | awk '{print "haproxy", $3}')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SCENARIOS; do scenario "$s"; done

echo
echo "summary (medians; ratio = of the median req/s, round = median of the per-round ratios):"
printf "%-10s %10s %10s %7s %7s %9s %9s %7s %8s %8s\n" scenario statelab haproxy ratio round p99_lb p99_ha p99_x cpu_lb cpu_ha
printf "%s" "$summary"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
