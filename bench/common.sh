# bench/common.sh — sourced by the benchmark scripts (bench/lb.sh,
# bench/lbrss.sh): installs missing tools and keeps a temp dir and the
# processes started in it, both cleaned up at exit.

# need_tools TOOL...: installs with apt-get those not on PATH or in /usr/sbin.
need_tools() {
	local missing=() p SUDO=""
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing ${missing[*]}" >&2
		[ "$(id -u)" -ne 0 ] && SUDO=sudo
		$SUDO apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	export PATH="$PATH:/usr/sbin"
}

tmp=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# haproxy_cfg MAXCONN CLIENT_TIMEOUT B1 B2 BIND...: HAProxy's configuration in
# the benchmarks: HTTP keep-alive, round robin over the two backends on
# loopback ports B1 and B2 with connection reuse, one "bind" line per BIND.
haproxy_cfg() {
	local maxconn=$1 tclient=$2 b1=$3 b2=$4 bind
	shift 4
	printf 'global\n    maxconn %s\ndefaults\n    mode http\n    timeout connect 2s\n' "$maxconn"
	printf '    timeout client %s\n    timeout server 60s\n' "$tclient"
	[ "$tclient" = 60s ] || printf '    timeout http-keep-alive %s\n' "$tclient"
	printf '    option http-keep-alive\nfrontend fe\n'
	for bind in "$@"; do printf '    bind %s\n' "$bind"; done
	printf '    default_backend be\nbackend be\n    balance roundrobin\n    http-reuse always\n'
	printf '    server b1 127.0.0.1:%s\n    server b2 127.0.0.1:%s\n' "$b1" "$b2"
}

# to_ms converts a wrk duration (812.00us, 1.20ms, 1.01s) to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else print v }'
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local t=0 p
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}

# median of a space-separated list
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
