#!/usr/bin/env bash
# ci.sh - the whole test suite, as the README's second command and .ci/run
# run it: installs what the tests need, builds twice and tests each build:
#   1. gcc, in the source tree (-Werror), unit + fuzz-corpus + protocol tests;
#   2. clang with AddressSanitizer, UBSan and libFuzzer, in build-asan/
#      (a copy of the sources), the same tests plus a bounded fuzzing run.
# Last line: "N passed, N failed, N skipped"; exit 1 if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

bash contrib/install-deps.sh test

build_tree() {	# DIR CONFIGURE-ARGS...
	local dir=$1; shift
	(cd "$dir" && autoreconf -fi >/dev/null 2>&1 && ./configure --quiet "$@" &&
	    make -j"$(nproc)" >/dev/null && make -j"$(nproc)" check TESTS= >/dev/null)
}

total_passed=0 total_failed=0 total_skipped=0
add_counts() {	# the last line of a run-tests output
	local line; line=$(tail -1 "$1")
	total_passed=$((total_passed + $(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')))
	total_failed=$((total_failed + $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')))
	total_skipped=$((total_skipped + $(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+')))
}

# Where install-deps.sh installs Hyperscan, a build without it is a CI
# failure, not a quiet fallback; the fallback is checked to compile below.
hs=()
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then hs=(--with-hyperscan); fi

echo "### build 1: gcc"
if build_tree "$src" CC=gcc "${hs[@]}"; then
	tests/run-tests "$src" gcc | tee /tmp/moat-ci-gcc.txt
	add_counts /tmp/moat-ci-gcc.txt
else
	echo "FAIL: gcc build"; total_failed=$((total_failed + 1))
fi

echo "### build 2: clang, AddressSanitizer + UBSan + libFuzzer"
asan="$src/build-asan/src"
rm -rf "$src/build-asan"; mkdir -p "$asan"
# The sources as they are in the work tree, without build products.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$asan"
else
	# Not a git checkout (a tarball): copy all, then drop build 1's products
	# so that no gcc object is reused by the clang build.
	tar --exclude=./build-asan -cf - . | tar -xf - -C "$asan"
	if [ -f "$asan/Makefile" ]; then (cd "$asan" && make -s distclean >/dev/null 2>&1) || true; fi
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if build_tree "$asan" CC=clang --enable-sanitizers --enable-fuzzers "${hs[@]}"; then
	tests/run-tests "$asan" clang-asan | tee /tmp/moat-ci-asan.txt
	add_counts /tmp/moat-ci-asan.txt
else
	echo "FAIL: clang sanitizer build"; total_failed=$((total_failed + 1))
fi

echo "### without Hyperscan: rules/hsscan.c's fallback compiles cleanly"
# shellcheck disable=SC2046
if gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -fsyntax-only $(pkg-config --cflags libpcre2-8) rules/hsscan.c; then
	echo "pass hsscan-without-hyperscan"; total_passed=$((total_passed + 1))
else
	echo "FAIL hsscan-without-hyperscan"; total_failed=$((total_failed + 1))
fi

echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
