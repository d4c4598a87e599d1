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
