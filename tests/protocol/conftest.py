"""Fixtures for the moat protocol tests.

Run from the tree root:  python3 -m pytest -q tests/protocol
(Debian packages: python3-pytest, python3-aiosmtpd, swaks; the binary is
proxy/moatd unless MOATD=/path/to/moatd is set; a missing binary fails.)
Everything listens on 127.0.0.1 (one test on [::1]) at kernel-chosen ports.

backend       a started ScriptedBackend with the default capabilities
make_backend  factory: make_backend(**BackendConfig fields) -> started backend
moatd         factory: moatd(backend, key=value, ...) -> started MoatdProcess
              (backend may be a ScriptedBackend, a port number, or None for a
              port nothing listens on; config=PATH uses that file instead of
              /dev/null; args=[...] adds raw arguments; ready=False does not
              wait for the banner)
swaks         run swaks against a moatd with a bounded time
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backend import ScriptedBackend, free_port  # noqa: E402
from helpers import HOSTNAME, MoatdProcess, moatd_binary  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the log of every moatd the test started."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for i, p in enumerate(getattr(item, "_moatd_procs", [])):
            text = p.log_text()
            if len(text) > 20000:
                text = "...\n" + text[-20000:]
            rep.sections.append((f"moatd[{i}] log ({' '.join(map(str, p.argv))})", text))


@pytest.fixture
def make_backend():
    started = []

    def make(**cfg) -> ScriptedBackend:
        b = ScriptedBackend(**cfg).start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def backend(make_backend) -> ScriptedBackend:
    return make_backend()


@pytest.fixture
def moatd(tmp_path, request):
    procs = []
    request.node._moatd_procs = procs

    def start(backend=None, *, config=None, args=(), ready=True, defaults=True, **opts):
        binary = moatd_binary()
        if not binary.exists():
            pytest.fail(f"moatd binary not found at {binary} (build it, or set MOATD)")
        if backend is None:
            backend_addr = f"127.0.0.1:{free_port()}"
        elif isinstance(backend, int):
            backend_addr = f"127.0.0.1:{backend}"
        elif isinstance(backend, str):
            backend_addr = backend
        else:
            backend_addr = backend.addr
        n = len(procs)
        decision_log = tmp_path / f"decisions{n}.jsonl"
        log_path = tmp_path / f"moatd{n}.log"
        for attempt in range(3):
            port = free_port()
            argv = [str(binary), "-c", str(config) if config else "/dev/null"]
            if defaults:
                base = {"listen": f"127.0.0.1:{port}", "backend": backend_addr,
                        "decision_log": str(decision_log), "hostname": HOSTNAME}
                for k, v in base.items():
                    if k not in opts:
                        argv += ["-o", f"{k}={v}"]
            for k, v in opts.items():
                argv += ["-o", f"{k}={v}"]
            argv += list(args)
            p = MoatdProcess(argv, port, tmp_path, log_path, decision_log)
            procs.append(p)
            if not ready:
                return p
            try:
                p.wait_ready()
                return p
            except RuntimeError as e:
                p.stop()
                if "in use" in str(e).lower() and attempt < 2:
                    continue
                raise
        raise AssertionError("unreachable")

    yield start
    # Every moatd must have ended cleanly: a sanitizer report (the CI's
    # ASan/UBSan build) or a crash fails the test that ran it.
    problems = []
    for p in procs:
        rc = p.stop()
        log = p.log_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "Segmentation fault"):
            if marker in log:
                problems.append(f"moatd {p.pid}: {marker}\n{log[-4000:]}")
                break
        else:
            if rc is not None and rc < 0 and rc != -signal.SIGKILL:
                problems.append(f"moatd {p.pid}: killed by signal {-rc}\n{log[-2000:]}")
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def swaks():
    if shutil.which("swaks") is None:
        pytest.fail("swaks is not installed")

    def run(moat, *args, timeout=60) -> subprocess.CompletedProcess:
        argv = ["swaks", "--server", f"{moat.host}:{moat.port}", "--timeout", "20"] + list(args)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, text=True, errors="replace")

    return run
