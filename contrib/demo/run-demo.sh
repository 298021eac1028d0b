#!/usr/bin/env bash
# run-demo.sh - build moat and run it locally in front of a demo mail server.
#
#   bash contrib/demo/run-demo.sh          install packages (root), build, start, send a test mail
#   bash contrib/demo/run-demo.sh stop     stop the demo (by the PIDs in demo-mail/*.pid)
#   bash contrib/demo/run-demo.sh status   show whether the demo is running
#
# What runs, from the repository root (the working directory of both):
#   contrib/demo/demo-backend.py   127.0.0.1:2526, stores mail in demo-mail/new/
#   proxy/moatd -c contrib/demo/demo.conf
#                                  127.0.0.1:2525 -> 127.0.0.1:2526
# Logs: demo-mail/moatd.log, demo-mail/decisions.jsonl, demo-mail/backend.log.
# Starting it again stops the running demo first.
#
# Options for "start": --no-build skips install-deps.sh and the build.
# Environment: MOATD (default proxy/moatd) runs another moatd binary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$(pwd)
DIR=demo-mail
LISTEN_PORT=2525
BACKEND_PORT=2526
MOATD=${MOATD:-proxy/moatd}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

say() { printf '%s\n' "run-demo: $*"; }
die() {
	printf '%s\n' "run-demo: $*" >&2
	exit 1
}

# pid_of NAME PATTERN: the PID in $DIR/NAME.pid if that process is alive and
# its command line contains PATTERN (so a reused PID is never signalled).
pid_of() {
	local file=$DIR/$1.pid pid cmd
	[ -f "$file" ] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ $cmd == *"$2"* ]] || return 1
	printf '%s\n' "$pid"
}

# stop_one NAME PATTERN: SIGTERM, wait up to 15 s, then SIGKILL.
stop_one() {
	local pid i
	if pid=$(pid_of "$1" "$2"); then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			[ -d "/proc/$pid" ] || break
			# a zombie (already exited, not yet reaped) counts as stopped
			[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
			sleep 0.1
		done
		if [ -d "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
			say "$1 (pid $pid) did not stop after SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		say "stopped $1 (pid $pid)"
	fi
	rm -f "$DIR/$1.pid"
}

stop_all() {
	stop_one moatd moatd
	stop_one backend demo-backend.py
}

# banner_ok PORT: true if 127.0.0.1:PORT answers with an SMTP 220 greeting
# (bounded: 3 s in all).
banner_ok() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		IFS= read -r -t 2 line <&3 || exit 1
		printf "QUIT\r\n" >&3
		[[ $line == 220* ]]' _ "$1" 2>/dev/null
}

# port_busy PORT: true if something accepts connections on 127.0.0.1:PORT.
port_busy() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# wait_banner NAME PORT SECONDS: wait for the 220 greeting while NAME runs;
# prints why it gave up.
wait_banner() {
	local i pattern=$1
	[ "$1" = backend ] && pattern=demo-backend.py
	for ((i = 0; i < $3 * 5; i++)); do
		if ! pid_of "$1" "$pattern" >/dev/null; then
			say "$1 exited during start-up"
			return 1
		fi
		banner_ok "$2" && return 0
		sleep 0.2
	done
	say "$1 did not greet on 127.0.0.1:$2 within $3 s"
	return 1
}

status() {
	local pid rc=0
	if pid=$(pid_of backend demo-backend.py); then
		say "demo backend running (pid $pid) on 127.0.0.1:$BACKEND_PORT"
	else
		say "demo backend not running"
		rc=1
	fi
	if pid=$(pid_of moatd moatd); then
		say "moatd running (pid $pid) on 127.0.0.1:$LISTEN_PORT"
	else
		say "moatd not running"
		rc=1
	fi
	return "$rc"
}

build() {
	bash contrib/install-deps.sh build
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		say "autoreconf -fi"
		autoreconf -fi
	fi
	if [ ! -f Makefile ] || [ ! -f config.status ] || [ configure -nt config.status ]; then
		say "./configure"
		./configure
	fi
	say "make -j2"
	make -j2
}

start() {
	local do_build=yes arg
	for arg in "$@"; do
		case "$arg" in
		--no-build) do_build=no ;;
		*) die "unknown option $arg (usage: $0 [start [--no-build]|stop|status])" ;;
		esac
	done

	stop_all
	if [ "$do_build" = yes ]; then
		build
	fi
	[ -x "$MOATD" ] || die "$MOATD not found or not executable (did the build succeed?)"
	command -v swaks >/dev/null || die "swaks is missing: run contrib/install-deps.sh build as root"
	"$PY" -c 'import aiosmtpd' 2>/dev/null ||
		die "python3-aiosmtpd is missing for $PY: run contrib/install-deps.sh build as root"
	for port in "$LISTEN_PORT" "$BACKEND_PORT"; do
		port_busy "$port" && die "127.0.0.1:$port is already in use by another program; stop it first"
	done

	mkdir -p "$DIR"
	# setsid: own session, so closing this terminal does not signal them.
	setsid "$PY" contrib/demo/demo-backend.py --listen "127.0.0.1:$BACKEND_PORT" --maildir "$DIR" \
		</dev/null >>"$DIR/backend.log" 2>&1 &
	echo "$!" >"$DIR/backend.pid"
	if ! wait_banner backend "$BACKEND_PORT" 10; then
		tail -n 20 "$DIR/backend.log" >&2 || true
		stop_all
		die "the demo backend did not start (log above: $DIR/backend.log)"
	fi
	say "demo backend up on 127.0.0.1:$BACKEND_PORT (pid $(<"$DIR/backend.pid"))"

	setsid "$MOATD" -c contrib/demo/demo.conf </dev/null >>"$DIR/moatd.log" 2>&1 &
	echo "$!" >"$DIR/moatd.pid"
	if ! wait_banner moatd "$LISTEN_PORT" 20; then
		tail -n 20 "$DIR/moatd.log" >&2 || true
		stop_all
		die "moatd did not start (log above: $DIR/moatd.log)"
	fi
	say "moatd up on 127.0.0.1:$LISTEN_PORT (pid $(<"$DIR/moatd.pid"))"

	# One test message through moat; find it by a token in its subject.
	local token found="" i
	token="demo-$(date +%s)-$$"
	say "sending a test message through moat:"
	if ! swaks --server "127.0.0.1:$LISTEN_PORT" --from demo@moat.demo --to user@example.net \
		--header "Subject: moat demo test $token" \
		--body "This message went through moat ($token)." >"$DIR/swaks-test.log" 2>&1; then
		grep -E '^<(-|\*\*|~)' "$DIR/swaks-test.log" | tail -n 5 >&2 || true
		say "the test message was not accepted (transcript: $DIR/swaks-test.log, decisions: $DIR/decisions.jsonl)"
		say "moat and the backend are still running; stop them with: bash contrib/demo/run-demo.sh stop"
		exit 1
	fi
	grep -E '^<- +250 .*queued|^<- +[45][0-9][0-9] ' "$DIR/swaks-test.log" | tail -n 1 || true
	for ((i = 0; i < 50; i++)); do
		found=$(grep -l -F -- "$token" "$DIR"/new/* 2>/dev/null | head -n 1 || true)
		[ -n "$found" ] && break
		sleep 0.1
	done
	if [ -z "$found" ]; then
		say "moat accepted the test message but it is not in $DIR/new/ (see $DIR/backend.log)"
		exit 1
	fi
	echo
	say "it arrived: $found"
	echo "----------------------------------------------------------------------"
	head -n 40 "$found" | tr -d '\r'
	echo "----------------------------------------------------------------------"
	cat <<EOF

moat is running:  client -> moatd 127.0.0.1:$LISTEN_PORT -> demo backend 127.0.0.1:$BACKEND_PORT

  send mail:         swaks --server 127.0.0.1:$LISTEN_PORT --to user@example.net
  see a rejection:   swaks --server 127.0.0.1:$LISTEN_PORT --to unknown@example.net
                     (the backend refuses local part "unknown"; moat relays its 550 live)
  mail lands in:     $ROOT/$DIR/new/  (one file per message)
  moatd log:         $ROOT/$DIR/moatd.log
  decision log:      $ROOT/$DIR/decisions.jsonl  (one JSON line per decision)
  backend log:       $ROOT/$DIR/backend.log
  status / stop:     bash contrib/demo/run-demo.sh status
                     bash contrib/demo/run-demo.sh stop
EOF
}

case "${1:-start}" in
start)
	[ "$#" -gt 0 ] && shift
	start "$@"
	;;
--no-build) start "$@" ;;
stop) stop_all ;;
status) status ;;
-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: $0 [start [--no-build]|stop|status]" ;;
esac
