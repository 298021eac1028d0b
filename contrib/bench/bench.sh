#!/usr/bin/env bash
# bench.sh - throughput, latency and memory benchmark of moatd against the
# same load sent straight to the backend, all on loopback:
#
#   smtp-source ──▶ smtp-sink                    (direct: the ceiling)
#   smtp-source ──▶ moatd ──▶ smtp-sink          (moat)
#
# It measures, in one run (see contrib/bench/README.md):
#   (a)/(b) msg/s direct and through moatd (--msgs, --sessions, --size), their
#           ratio, moatd's peak RSS (VmHWM) and CPU per message;
#   (c)     one session (--latency-msgs, smtp-source -s 1): ms per message
#           direct and through moatd, and the difference (latency moat adds);
#   (d)     --idle idle client connections held open on moatd (idle-conns.py),
#           and moatd's VmRSS/VmHWM while they are held.
# (a)-(c) are repeated --reps times, direct and moat interleaved, and the
# median is reported.  Every run checks that smtp-sink received exactly the
# messages that were sent (its -c counter); a run that lost mail is failed.
# Output: a short table, then one JSON line.  Exit 0 if every run passed.
#
# Needs smtp-source/smtp-sink (Debian's postfix: contrib/install-deps.sh
# bench) and python3.  Run from anywhere; as root smtp-sink runs as nobody.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT"

usage() {
	cat <<'EOF'
usage: contrib/bench/bench.sh [options]

  --reps N            runs of each measurement, median reported (3)
  --msgs N            messages in a throughput run (20000)
  --sessions N        parallel sessions in a throughput run (50)
  --size BYTES        message body size, smtp-source -l (4096)
  --warmup N          unmeasured messages before each run (500; 100 for latency)
  --latency-msgs N    messages in the one-session latency run, 0 skips it (1000)
  --idle N            idle connections for the memory test, 0 skips it (5000)
  --sink-port P       smtp-sink port on 127.0.0.1 (10025)
  --proxy-port P      moatd port on 127.0.0.1 (10026)
  --moatd PATH        moatd binary (proxy/moatd)
  --moat-opt K=V      extra "-o K=V" for moatd (repeatable)
  --proxy-cmd 'CMD'   run CMD instead of moatd; {listen} and {backend} are
                      replaced by 127.0.0.1:PORT of the proxy and the sink
  --direct-only       only the direct runs (no proxy; skips the idle test)
  --max-seconds S     limit for one smtp-source run (600)
  --start-timeout S   limit for the proxy to greet (20)
  --workdir DIR       where logs go (default: a new /tmp/moat-bench.XXXXXX)
  --json FILE         also append the final JSON line to FILE
  -h, --help          this text
EOF
}

die() {
	printf 'bench: %s\n' "$*" >&2
	exit 2
}

REPS=3 MSGS=20000 SESSIONS=50 SIZE=4096 WARMUP=500 LAT_MSGS=1000 IDLE=5000
SINK_PORT=10025 PROXY_PORT=10026 MOATD=proxy/moatd PROXY_CMD="" DIRECT_ONLY=no
MAX_SECONDS=600 START_TIMEOUT=20 WORK="" JSON_FILE=""
MOAT_OPTS=()

need_arg() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
while [ "$#" -gt 0 ]; do
	case "$1" in
	--reps) need_arg "$@"; REPS=$2; shift 2 ;;
	--msgs) need_arg "$@"; MSGS=$2; shift 2 ;;
	--sessions) need_arg "$@"; SESSIONS=$2; shift 2 ;;
	--size) need_arg "$@"; SIZE=$2; shift 2 ;;
	--warmup) need_arg "$@"; WARMUP=$2; shift 2 ;;
	--latency-msgs) need_arg "$@"; LAT_MSGS=$2; shift 2 ;;
	--idle) need_arg "$@"; IDLE=$2; shift 2 ;;
	--sink-port) need_arg "$@"; SINK_PORT=$2; shift 2 ;;
	--proxy-port) need_arg "$@"; PROXY_PORT=$2; shift 2 ;;
	--moatd) need_arg "$@"; MOATD=$2; shift 2 ;;
	--moat-opt) need_arg "$@"; MOAT_OPTS+=("$2"); shift 2 ;;
	--proxy-cmd) need_arg "$@"; PROXY_CMD=$2; shift 2 ;;
	--direct-only) DIRECT_ONLY=yes; shift ;;
	--max-seconds) need_arg "$@"; MAX_SECONDS=$2; shift 2 ;;
	--start-timeout) need_arg "$@"; START_TIMEOUT=$2; shift 2 ;;
	--workdir) need_arg "$@"; WORK=$2; shift 2 ;;
	--json) need_arg "$@"; JSON_FILE=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
for v in REPS MSGS SESSIONS SIZE WARMUP LAT_MSGS IDLE SINK_PORT PROXY_PORT MAX_SECONDS START_TIMEOUT; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
if [ "$REPS" -lt 1 ] || [ "$MSGS" -lt 1 ] || [ "$SESSIONS" -lt 1 ]; then
	die "--reps, --msgs and --sessions must be at least 1"
fi
for o in "${MOAT_OPTS[@]}"; do
	[[ $o == *=* ]] || die "--moat-opt wants key=value, got '$o'"
done

LISTEN=127.0.0.1:$PROXY_PORT
BACKEND=127.0.0.1:$SINK_PORT
CUSTOM_PROXY=$PROXY_CMD
if [ -z "$PROXY_CMD" ]; then
	PROXY_CMD="$(printf '%q' "$MOATD") -c /dev/null -o listen={listen} -o backend={backend}"
	# No rules unless asked (--moat-opt rules=...): the baseline is the bare proxy.
	PROXY_CMD+=" -o decision_log=/dev/null -o max_connections_per_ip=0 -o rules="
	# moatd's max_connections defaults to 10000: make room for a big idle test.
	if [ $((IDLE + SESSIONS + 100)) -gt 10000 ]; then
		PROXY_CMD+=" -o max_connections=$((IDLE + SESSIONS + 100))"
	fi
	for o in "${MOAT_OPTS[@]}"; do
		PROXY_CMD+=" -o $(printf '%q' "$o")"
	done
	if [ "$DIRECT_ONLY" = no ] && [ ! -x "$MOATD" ]; then
		die "$MOATD not found (build it with make, or use --direct-only / --proxy-cmd)"
	fi
elif [ "${#MOAT_OPTS[@]}" -gt 0 ]; then
	echo "bench: note: --moat-opt is ignored with --proxy-cmd" >&2
fi
PROXY_CMD=${PROXY_CMD//\{listen\}/$LISTEN}
PROXY_CMD=${PROXY_CMD//\{backend\}/$BACKEND}

find_tool() {
	local d
	for d in /usr/sbin /usr/lib/postfix/sbin /usr/bin; do
		[ -x "$d/$1" ] && { printf '%s\n' "$d/$1"; return 0; }
	done
	die "$1 not found: run contrib/install-deps.sh bench (package postfix)"
}
SOURCE=$(find_tool smtp-source)
SINK=$(find_tool smtp-sink)
command -v python3 >/dev/null || die "python3 not found"
SINK_USER=()
[ "$(id -u)" -eq 0 ] && SINK_USER=(-u nobody) # smtp-sink refuses to run as root without -u
# smtp-source/smtp-sink free and regrow a 128 KiB buffer per session; the
# brk/page-fault churn costs more than SMTP on small VMs, so keep the heap.
LOADGEN_TUNABLES=glibc.malloc.trim_threshold=16777216:glibc.malloc.top_pad=16777216
CLK_TCK=$(getconf CLK_TCK)

# File descriptors: idle connections need one each, in idle-conns.py and in moatd.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if [ "$IDLE" -gt 0 ] && [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt $((IDLE + 200)) ]; then
	echo "bench: file-descriptor limit is $NOFILE; idle test reduced to $((NOFILE - 200)) connections" >&2
	IDLE=$((NOFILE - 200))
	[ "$IDLE" -gt 0 ] || IDLE=0
fi

if [ -z "$WORK" ]; then
	WORK=$(mktemp -d /tmp/moat-bench.XXXXXX)
else
	mkdir -p "$WORK"
fi
WORK=$(cd "$WORK" && pwd)
: >"$WORK/runs.tsv"

# ---------------------------------------------------------------- processes
PIDS=() # everything this script started in the background

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; reap it.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		echo "bench: pid $pid ignored SIGTERM; SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# alive PID: running and not a zombie.
alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do
		stop_pid "$p"
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_busy PORT: something accepts on 127.0.0.1:PORT.
port_busy() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# wait_banner PORT PID SECONDS: wait for a 220 greeting while PID lives.
wait_banner() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do
		alive "$2" || return 1
		# shellcheck disable=SC2016 # expanded by the inner bash
		if timeout 3 bash -c '
			exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
			IFS= read -r -t 2 line <&3 || exit 1
			printf "QUIT\r\n" >&3
			[[ $line == 220* ]]' _ "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

# ptree PID: PID and its descendants, one per line.
ptree() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			print root
			for (p in parent) { q = p; n = 0
				while (q in parent && q != root && n++ < 64) q = parent[q]
				if (q == root && p != root) print p }
		}'
}

# tree_ticks PID: user+system clock ticks of the tree, reaped children included.
tree_ticks() {
	local p sum=0 t
	for p in $(ptree "$1"); do
		t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# tree_status_kb PID FIELD: sum of FIELD (VmRSS, VmHWM) in kB over the tree.
tree_status_kb() {
	local p sum=0 v
	for p in $(ptree "$1"); do
		v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

now() { date +%s.%N; }

SINK_PID="" PROXY_PID=""

start_sink() { # start_sink TAG
	env GLIBC_TUNABLES="$LOADGEN_TUNABLES" "$SINK" -c "${SINK_USER[@]}" "$BACKEND" 1024 \
		</dev/null >"$WORK/sink.$1.out" 2>&1 &
	SINK_PID=$!
	PIDS+=("$SINK_PID")
	wait_banner "$SINK_PORT" "$SINK_PID" 10
}

# wait_prefilter LOG PID: moatd builds its rules' Hyperscan prefilter on a
# thread after it starts listening; measure only once the log says it ended
# (or that there are no rules).  Bounded by START_TIMEOUT + 120 s.
wait_prefilter() {
	local i
	for ((i = 0; i < (START_TIMEOUT + 120) * 5; i++)); do
		alive "$2" || return 1
		grep -Eq 'rules: (none|generation 1: )' "$1" && return 0
		sleep 0.2
	done
	return 1
}

start_proxy() { # start_proxy TAG
	bash -c "exec $PROXY_CMD" </dev/null >"$WORK/proxy.$1.log" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	wait_banner "$PROXY_PORT" "$PROXY_PID" "$START_TIMEOUT" || return 1
	[ -n "$CUSTOM_PROXY" ] || wait_prefilter "$WORK/proxy.$1.log" "$PROXY_PID"
}

stop_sink() {
	[ -n "$SINK_PID" ] || return 0
	stop_pid "$SINK_PID"
	forget_pid "$SINK_PID"
	SINK_PID=""
}

stop_proxy() {
	[ -n "$PROXY_PID" ] || return 0
	stop_pid "$PROXY_PID"
	forget_pid "$PROXY_PID"
	PROXY_PID=""
}

# sink_count TAG: messages smtp-sink counted (read after it stopped).
sink_count() {
	local n
	n=$(tr '\r' '\n' <"$WORK/sink.$1.out" | grep -o 'mesg=[0-9]*' | tail -n 1 | cut -d= -f2 || true)
	echo "${n:-0}"
}

# smtp_source PORT MSGS SESSIONS LOG: one bounded smtp-source run; sets ELAPSED.
ELAPSED=0
smtp_source() {
	local t0 t1 pid rc=0
	t0=$(now)
	timeout -k 5 "$MAX_SECONDS" env GLIBC_TUNABLES="$LOADGEN_TUNABLES" \
		"$SOURCE" -s "$3" -m "$2" -l "$SIZE" -d -f bench@example.com -t rcpt@example.net \
		-M client.example.com "127.0.0.1:$1" </dev/null >>"$4" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget_pid "$pid"
	t1=$(now)
	ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
	[ "$rc" -eq 124 ] && echo "smtp-source: killed after $MAX_SECONDS s" >>"$4"
	return "$rc"
}

# one_run SCENARIO TARGET REP MSGS SESSIONS WARMUP
# Fresh sink (and proxy) per run; appends one line to runs.tsv:
# scenario target rep ok rate ms_per_msg elapsed sink expected hwm_kb cpu_ms_per_msg error
one_run() {
	local sc=$1 target=$2 rep=$3 msgs=$4 sessions=$5 warm=$6
	local tag="$sc-$target-$rep" port=$SINK_PORT ok=0 err="" rate=- msper=- hwm=- cpums=- got=- t0 t1
	local log="$WORK/source.$tag.log"
	local expected=$((msgs + warm))
	ELAPSED=-
	: >"$log"
	if port_busy "$SINK_PORT" || port_busy "$PROXY_PORT"; then
		err="port $SINK_PORT or $PROXY_PORT busy"
	elif ! start_sink "$tag"; then
		err="smtp-sink did not start ($WORK/sink.$tag.out)"
	elif [ "$target" = moat ] && ! start_proxy "$tag"; then
		err="proxy did not greet on $LISTEN within ${START_TIMEOUT}s ($WORK/proxy.$tag.log)"
	else
		[ "$target" = moat ] && port=$PROXY_PORT
		if [ "$warm" -gt 0 ] && ! smtp_source "$port" "$warm" "$(( sessions < warm ? sessions : warm ))" "$log"; then
			err="warm-up failed ($log)"
		else
			[ -n "$PROXY_PID" ] && t0=$(tree_ticks "$PROXY_PID")
			if ! smtp_source "$port" "$msgs" "$sessions" "$log"; then
				err="smtp-source failed ($log)"
			fi
			rate=$(awk -v n="$msgs" -v e="$ELAPSED" 'BEGIN { printf "%.1f", n / e }')
			msper=$(awk -v n="$msgs" -v e="$ELAPSED" 'BEGIN { printf "%.4f", 1000 * e / n }')
			if [ -n "$PROXY_PID" ]; then
				t1=$(tree_ticks "$PROXY_PID")
				cpums=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$msgs" 'BEGIN { printf "%.4f", 1000 * d / hz / n }')
				hwm=$(tree_status_kb "$PROXY_PID" VmHWM)
				alive "$PROXY_PID" || err=${err:-"proxy exited during the run ($WORK/proxy.$tag.log)"}
			fi
		fi
	fi
	stop_proxy
	stop_sink
	if [ -z "$err" ]; then
		got=$(sink_count "$tag")
		if [ "$got" -eq "$expected" ]; then
			ok=1
		else
			err="sink received $got messages, expected $expected"
		fi
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$target" "$rep" "$ok" "$rate" \
		"$msper" "$ELAPSED" "$got" "$expected" "$hwm" "$cpums" "${err:--}" >>"$WORK/runs.tsv"
	local what
	if [ "$sc" = lat ]; then what="$msper ms/msg"; else what="$rate msg/s"; fi
	printf '  [%s rep %s] %-6s %-16s sink %s/%s%s%s\n' "$sc" "$rep" "$target" "$what" "$got" "$expected" \
		"$([ "$hwm" != - ] && printf '  peak RSS %s kB  cpu %s ms/msg' "$hwm" "$cpums")" \
		"$([ "$ok" = 1 ] && echo '  ok' || echo "  FAILED: $err")"
}

# ---------------------------------------------------------------- idle test
IDLE_RES="" # JSON object for the idle test
idle_test() {
	local tag=idle err="" before=- rss=- hwm=- greeted=0 line i per=- ipid dropped=-
	local out="$WORK/idle-conns.out"
	: >"$out"
	if port_busy "$SINK_PORT" || port_busy "$PROXY_PORT"; then
		err="port $SINK_PORT or $PROXY_PORT busy"
	elif ! start_sink "$tag"; then
		err="smtp-sink did not start"
	elif ! start_proxy "$tag"; then
		err="proxy did not greet on $LISTEN ($WORK/proxy.$tag.log)"
	else
		sleep 0.5
		before=$(tree_status_kb "$PROXY_PID" VmRSS)
		python3 "$HERE/idle-conns.py" -n "$IDLE" --hold 120 --deadline 120 "$LISTEN" >"$out" 2>&1 &
		ipid=$!
		PIDS+=("$ipid")
		for ((i = 0; i < 1300; i++)); do # up to 130 s for the connections to open
			grep -q '"event": "holding"' "$out" && break
			alive "$ipid" || break
			sleep 0.1
		done
		line=$(grep '"event": "holding"' "$out" || true)
		if [ -z "$line" ]; then
			err="idle-conns.py did not report ($out)"
		else
			greeted=$(sed -n 's/.*"greeted": \([0-9]*\).*/\1/p' <<<"$line")
			sleep 1 # let the proxy settle
			rss=$(tree_status_kb "$PROXY_PID" VmRSS)
			hwm=$(tree_status_kb "$PROXY_PID" VmHWM)
			alive "$PROXY_PID" || err="proxy exited while holding idle connections"
			[ "$greeted" -eq "$IDLE" ] || err="only $greeted of $IDLE connections were greeted ($out)"
		fi
		stop_pid "$ipid"
		forget_pid "$ipid"
		dropped=$(sed -n 's/.*"dropped_by_server": \([0-9]*\).*/\1/p' "$out")
		dropped=${dropped:--}
	fi
	stop_proxy
	stop_sink
	if [ "$rss" != - ] && [ "$before" != - ] && [ "$greeted" -gt 0 ]; then
		per=$(awk -v a="$before" -v b="$rss" -v n="$greeted" 'BEGIN { printf "%.2f", (b - a) / n }')
	fi
	IDLE_OK=$([ -z "$err" ] && echo true || echo false)
	IDLE_RES=$(printf '{"conns":%s,"greeted":%s,"rss_before_mb":%s,"rss_mb":%s,"hwm_mb":%s,"kb_per_conn":%s,"dropped_by_server":%s,"ok":%s,"error":%s}' \
		"$IDLE" "$greeted" "$(mb "$before")" "$(mb "$rss")" "$(mb "$hwm")" "$(num "$per")" "$(num "$dropped")" \
		"$IDLE_OK" "$(jstr "$err")")
	IDLE_LINE=$(printf 'greeted %s/%s; moatd RSS %s MB before, %s MB holding them (VmHWM %s MB), %s kB per connection' \
		"$greeted" "$IDLE" "$(mb_txt "$before")" "$(mb_txt "$rss")" "$(mb_txt "$hwm")" "$per")
	[ -z "$err" ] || IDLE_LINE+="  FAILED: $err"
}

# ---------------------------------------------------------------- summaries
# mb KB: megabytes with one decimal, "null" for "-" (JSON); mb_txt: "-" instead.
mb() { if [ "$1" = - ]; then echo null; else awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; fi; }
mb_txt() { if [ "$1" = - ]; then echo -; else mb "$1"; fi; }
num() { if [ "$1" = - ] || [ -z "$1" ]; then echo null; else echo "$1"; fi; }
jstr() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/ }
	s=${s//$'\n'/ }
	printf '"%s"' "$s"
}

# col_stat SCENARIO TARGET COLUMN FN: median|min|max of a column over the ok runs ("-" if none).
col_stat() {
	awk -F'\t' -v sc="$1" -v t="$2" -v c="$3" '$1 == sc && $2 == t && $4 == 1 && $c != "-" { print $c }' \
		"$WORK/runs.tsv" | sort -g | awk -v fn="$4" '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			if (fn == "min") print v[1]
			else if (fn == "max") print v[NR]
			else if (NR % 2) print v[(NR + 1) / 2]
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}
okruns() {
	awk -F'\t' -v sc="$1" -v t="$2" '$1 == sc && $2 == t { n++; ok += $4 } END { printf "%d/%d", ok, n }' "$WORK/runs.tsv"
}
fmt() { if [ "$1" = - ]; then echo -; else awk -v v="$1" -v f="$2" 'BEGIN { printf f, v }'; fi; }
ratio() {
	if [ "$1" = - ] || [ "$2" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; fi
}
diff_ms() {
	if [ "$1" = - ] || [ "$2" = - ]; then echo -; else awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a - b }'; fi
}

# ---------------------------------------------------------------- main
for p in "$SINK_PORT" "$PROXY_PORT"; do
	port_busy "$p" && die "127.0.0.1:$p is already in use; pick another with --sink-port/--proxy-port"
done

targets=(direct)
[ "$DIRECT_ONLY" = yes ] || targets+=(moat)
echo "moat bench: $MSGS msgs x $SIZE B, $SESSIONS sessions; latency $LAT_MSGS msgs on 1 session; $REPS reps"
echo "  load: $SOURCE -> $BACKEND ($SINK)"
[ "$DIRECT_ONLY" = yes ] || echo "  proxy: $PROXY_CMD"
echo "  logs: $WORK"
lat_warm=$((WARMUP < 100 ? WARMUP : 100))
for ((rep = 1; rep <= REPS; rep++)); do
	for t in "${targets[@]}"; do
		one_run tput "$t" "$rep" "$MSGS" "$SESSIONS" "$WARMUP"
	done
	if [ "$LAT_MSGS" -gt 0 ]; then
		for t in "${targets[@]}"; do
			one_run lat "$t" "$rep" "$LAT_MSGS" 1 "$lat_warm"
		done
	fi
done
IDLE_RES=null IDLE_LINE="skipped" IDLE_OK=true
if [ "$DIRECT_ONLY" = no ] && [ "$IDLE" -gt 0 ]; then
	idle_test
fi

d_rate=$(col_stat tput direct 5 median) m_rate=$(col_stat tput moat 5 median)
m_hwm=$(col_stat tput moat 10 max) m_cpu=$(col_stat tput moat 11 median)
d_lat=$(col_stat lat direct 6 median) m_lat=$(col_stat lat moat 6 median)
tput_ratio=$(ratio "$m_rate" "$d_rate")
added=$(diff_ms "$m_lat" "$d_lat")
range() {
	local lo hi
	lo=$(col_stat "$1" "$2" "$3" min) hi=$(col_stat "$1" "$2" "$3" max)
	if [ "$lo" = - ]; then echo -; else echo "$(fmt "$lo" "$4")-$(fmt "$hi" "$4")"; fi
}

echo
echo "median of $REPS runs"
printf '%-34s %10s %15s %8s\n' "throughput ($SESSIONS sessions, $MSGS msgs)" "msg/s" "min-max" "runs ok"
printf '  %-32s %10s %15s %8s\n' direct "$(fmt "$d_rate" %.0f)" "$(range tput direct 5 %.0f)" "$(okruns tput direct)"
if [ "$DIRECT_ONLY" = no ]; then
	printf '  %-32s %10s %15s %8s\n' moat "$(fmt "$m_rate" %.0f)" "$(range tput moat 5 %.0f)" "$(okruns tput moat)"
	printf '  %-32s %10s\n' "ratio moat/direct" "$tput_ratio"
	printf '  %-32s %10s MB (VmHWM, largest run)\n' "moatd peak RSS" "$(mb_txt "$m_hwm")"
	printf '  %-32s %10s ms/msg\n' "moatd CPU" "$(fmt "$m_cpu" %.3f)"
fi
if [ "$LAT_MSGS" -gt 0 ]; then
	printf '%-34s %10s %15s %8s\n' "latency (1 session, $LAT_MSGS msgs)" "ms/msg" "min-max" "runs ok"
	printf '  %-32s %10s %15s %8s\n' direct "$(fmt "$d_lat" %.3f)" "$(range lat direct 6 %.3f)" "$(okruns lat direct)"
	if [ "$DIRECT_ONLY" = no ]; then
		printf '  %-32s %10s %15s %8s\n' moat "$(fmt "$m_lat" %.3f)" "$(range lat moat 6 %.3f)" "$(okruns lat moat)"
		printf '  %-32s %10s\n' "added by moat" "$(fmt "$added" %.3f)"
	fi
fi
echo "idle connections ($IDLE): $IDLE_LINE"

all_ok=true
if awk -F'\t' '$4 != 1 { bad = 1 } END { exit !bad }' "$WORK/runs.tsv"; then all_ok=false; fi
[ "$IDLE_OK" = true ] || all_ok=false
echo "result: $([ "$all_ok" = true ] && echo 'all runs OK' || echo 'FAILED (see above)')   logs: $WORK"

json=$(printf '{"bench":"moat","ok":%s,"reps":%s,"msgs":%s,"sessions":%s,"size":%s,' \
	"$all_ok" "$REPS" "$MSGS" "$SESSIONS" "$SIZE")
json+=$(printf '"throughput":{"direct_msgs_per_s":%s,"moat_msgs_per_s":%s,"ratio":%s,"moat_peak_rss_mb":%s,"moat_cpu_ms_per_msg":%s,"runs_ok":{"direct":"%s","moat":"%s"}},' \
	"$(num "$d_rate")" "$(num "$m_rate")" "$(num "$tput_ratio")" "$(mb "$m_hwm")" "$(num "$m_cpu")" \
	"$(okruns tput direct)" "$(okruns tput moat)")
json+=$(printf '"latency":{"msgs":%s,"direct_ms_per_msg":%s,"moat_ms_per_msg":%s,"added_ms_per_msg":%s,"runs_ok":{"direct":"%s","moat":"%s"}},' \
	"$LAT_MSGS" "$(num "$d_lat")" "$(num "$m_lat")" "$(num "$added")" "$(okruns lat direct)" "$(okruns lat moat)")
json+=$(printf '"idle":%s,"proxy_cmd":%s,"workdir":%s}' "$IDLE_RES" \
	"$(if [ "$DIRECT_ONLY" = yes ]; then echo null; else jstr "$PROXY_CMD"; fi)" "$(jstr "$WORK")")
echo "$json"
[ -z "$JSON_FILE" ] || echo "$json" >>"$JSON_FILE"
[ "$all_ok" = true ]
