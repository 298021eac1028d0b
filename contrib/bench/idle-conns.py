#!/usr/bin/env python3
"""idle-conns.py - open many idle SMTP connections to a server and hold them.

Used by contrib/bench/bench.sh to measure what idle clients cost moatd:

    idle-conns.py [-n 5000] [--hold 60] [--concurrency 200] [--timeout 10] HOST:PORT

Opens N TCP connections (at most --concurrency connecting at once), reads the
220 greeting on each (--timeout for each step, --deadline for all of them),
then holds them all open without sending anything.
When every connection has been tried it prints one JSON line and flushes:

    {"event": "holding", "requested": 5000, "greeted": 5000, "failed": 0, "errors": {}, "seconds": 1.9}

and keeps the connections for --hold seconds, or until SIGTERM/SIGINT, then
closes them and prints a second line:

    {"event": "done", "held_seconds": 3.0, "dropped_by_server": 0}

("dropped_by_server": connections the server closed or wrote to while they
were held).  Exit status 0 if every connection was greeted with 220, else 1.
Needs a file-descriptor limit above N (ulimit -n).  Python 3 stdlib only.
"""
import argparse
import asyncio
import errno
import json
import signal
import sys
import time


def parse_target(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def open_one(host, port, timeout, gate, errors):
    """Connect and read the greeting; returns (reader, writer) or None."""
    async with gate:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            line = await asyncio.wait_for(reader.readline(), timeout)
            # skip continuation lines of a multi-line greeting (220-...)
            while line[3:4] == b"-":
                line = await asyncio.wait_for(reader.readline(), timeout)
            if not line.startswith(b"220"):
                key = "greeting " + (line[:3].decode(errors="replace") or "EOF")
                errors[key] = errors.get(key, 0) + 1
                writer.close()
                return None
            return reader, writer
        except (OSError, asyncio.TimeoutError) as e:
            if isinstance(e, asyncio.TimeoutError) or not isinstance(e, OSError):
                key = "timeout"
            else:
                key = errno.errorcode.get(e.errno, type(e).__name__) if e.errno else type(e).__name__
            errors[key] = errors.get(key, 0) + 1
            if writer is not None:
                writer.close()
            return None


async def main_async(a):
    host, port = a.target
    gate = asyncio.Semaphore(a.concurrency)
    errors = {}
    t0 = time.monotonic()
    tasks = [asyncio.ensure_future(open_one(host, port, a.timeout, gate, errors)) for _ in range(a.n)]
    done, pending = await asyncio.wait(tasks, timeout=a.deadline)
    for t in pending:  # over the overall deadline: give up on the rest
        t.cancel()
    if pending:
        await asyncio.wait(pending)
        errors["deadline"] = len(pending)
    conns = [t.result() for t in done if not t.cancelled() and t.exception() is None and t.result()]
    print(json.dumps({"event": "holding", "requested": a.n, "greeted": len(conns),
                      "failed": a.n - len(conns), "errors": errors,
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # A read that completes means the server wrote or closed: count it.
    watchers = [asyncio.ensure_future(r.read(1)) for r, _ in conns]
    t1 = time.monotonic()
    try:
        await asyncio.wait_for(stop.wait(), a.hold)
    except asyncio.TimeoutError:
        pass
    held = time.monotonic() - t1
    dropped = sum(1 for w in watchers if w.done())
    for w in watchers:
        w.cancel()
    for _, w in conns:
        w.close()
    print(json.dumps({"event": "done", "held_seconds": round(held, 3), "dropped_by_server": dropped}),
          flush=True)
    return 0 if len(conns) == a.n else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", type=parse_target, help="HOST:PORT of the SMTP server")
    ap.add_argument("-n", type=int, default=5000, help="connections to open (default 5000)")
    ap.add_argument("--hold", type=float, default=60, help="seconds to hold them at most (default 60)")
    ap.add_argument("--concurrency", type=int, default=200, help="connection attempts in flight (default 200)")
    ap.add_argument("--timeout", type=float, default=10, help="seconds for connect, and for the greeting (default 10)")
    ap.add_argument("--deadline", type=float, default=120,
                    help="seconds for opening all of them; the rest count as failed (default 120)")
    a = ap.parse_args()
    if a.n < 1 or a.concurrency < 1:
        ap.error("-n and --concurrency must be at least 1")
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = a.n + 64
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
            if min(need, hard) < need:
                print(f"idle-conns: warning: file-descriptor limit {hard} < {need}; raise ulimit -n",
                      file=sys.stderr)
    except (ImportError, ValueError, OSError):
        pass
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
