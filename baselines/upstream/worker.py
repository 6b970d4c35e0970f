"""The adapter side of the upstream protocol: one resident worker process per run.

The worker (``baselines/<method>/upstream_worker.py`` run by the upstream environment's interpreter, or the
fake upstream of the tests) loads the model once and answers one request per call; see :mod:`.serve` for
the wire format. This class starts it with an argument list (never a shell string), waits for it to be
ready, sends requests with a timeout, and turns every way a call can go wrong into a :class:`WorkerError`:

* the worker reports an error for the job (it stays alive for the next clip);
* the worker dies (its exit code and last stderr lines are in the message; the next call restarts it);
* the call times out (the worker is killed; the next call restarts it);
* the worker cannot start (after ``max_start_failures`` failed starts in a row it is not retried).

stderr goes to the log file of the current clip (``<scratch>/upstream/worker.log``), and its last lines
are kept for error messages.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from baselines.upstream.errors import WorkerError

_EOF = object()
STDERR_TAIL_LINES = 30


@dataclass(frozen=True)
class WorkerSpec:
    """How to start a worker: ``argv[0]`` is the upstream interpreter, ``argv[1]`` the worker script."""

    argv: tuple[str, ...]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    startup_timeout_s: float = 1800.0
    call_timeout_s: float = 3600.0
    max_start_failures: int = 2

    def record(self) -> dict:
        return {"argv": list(self.argv), "cwd": str(self.cwd) if self.cwd else None, "env": dict(self.env)}


class _LogSink:
    """stderr lines -> the current log file, plus a tail kept in memory."""

    def __init__(self):
        self.tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._lock = threading.Lock()
        self._file = None

    def switch(self, path: Path | None) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = None
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path, "a", encoding="utf-8", errors="replace")

    def write(self, line: str) -> None:
        with self._lock:
            self.tail.append(line.rstrip("\n"))
            if self._file is not None:
                self._file.write(line if line.endswith("\n") else line + "\n")
                self._file.flush()

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.tail)


class ResidentWorker:
    """One upstream worker process, started on first use and restarted after it dies."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._log = _LogSink()
        self._next_id = 0
        self._start_failures = 0
        self._last_start_error = ""
        self._stderr_pump: threading.Thread | None = None
        self.starts = 0  # how many processes were started (tests check that the model loads once)

    # -------------------------------------------------------------------------------------------- public

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def call(self, request: dict, log_path: Path | None = None) -> dict:
        """Send one request and return the worker's result; raise WorkerError on any failure."""
        self._log.switch(log_path)
        if not self._alive():
            self._start()
        self._next_id += 1
        message = dict(request, id=self._next_id)
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(f"while sending request {request.get('op')!r}") from None
        reply = self._wait_for(lambda m: m.get("id") == self._next_id, self.spec.call_timeout_s, "the request")
        if not reply.get("ok"):
            detail = reply.get("traceback") or ""
            raise WorkerError(f"upstream error: {reply.get('error')}\n{detail}".rstrip())
        return reply

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to exit; kill it if it does not."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.stdin.write(json.dumps({"id": 0, "op": "shutdown"}) + "\n")
                proc.stdin.close()
                proc.wait(timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                _kill(proc)
        self._log.switch(None)

    def __del__(self):  # best effort: a worker never outlives the adapter that started it
        try:
            self.close(timeout_s=2.0)
        except Exception:
            pass

    # -------------------------------------------------------------------------------------------- process

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        if self._start_failures >= self.spec.max_start_failures:
            raise WorkerError(
                f"the upstream worker failed to start {self._start_failures} times in a row; not retrying. "
                f"Last failure: {self._last_start_error}"
            )
        self._lines = queue.Queue()
        env = dict(os.environ, **self.spec.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            self._proc = subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=str(self.spec.cwd) if self.spec.cwd else None,
                env=env,
                text=True,
                bufsize=1,
                start_new_session=True,  # its own process group: a timeout kills the worker and its children
            )
        except OSError as exc:
            self._fail_start(f"cannot execute {self.spec.argv[0]}: {exc}")
        self.starts += 1
        threading.Thread(target=self._pump_stdout, args=(self._proc, self._lines), daemon=True).start()
        self._stderr_pump = threading.Thread(target=self._pump_stderr, args=(self._proc,), daemon=True)
        self._stderr_pump.start()
        try:
            ready = self._wait_for(lambda m: "event" in m, self.spec.startup_timeout_s, "the model to load")
        except WorkerError as exc:
            self._fail_start(str(exc))
        if ready.get("event") != "ready":
            _kill(self._proc)
            self._fail_start(f"the worker could not load the model: {ready.get('error')}\n{ready.get('traceback', '')}")
        self._start_failures = 0

    def _fail_start(self, message: str) -> None:
        self._start_failures += 1
        self._last_start_error = message
        raise WorkerError(f"upstream worker failed to start ({' '.join(self.spec.argv[:2])}): {message}")

    def _pump_stdout(self, proc: subprocess.Popen, lines: queue.Queue) -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(_EOF)

    def _pump_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            self._log.write(line)

    def _wait_for(self, matches, timeout_s: float, what: str) -> dict:
        """Next protocol message satisfying ``matches``; non-protocol stdout lines are logged and skipped."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._lines.get(timeout=max(remaining, 0.0)) if remaining > 0 else None
            except queue.Empty:
                line = None
            if line is None:
                _kill(self._proc)
                raise WorkerError(f"timed out after {timeout_s:g} s waiting for {what}; worker killed{self._tail()}")
            if line is _EOF:
                raise self._died(f"while waiting for {what}")
            message = _parse(line)
            if message is None:
                self._log.write(f"[stdout] {line}")
                continue
            if matches(message):
                return message

    def _died(self, when: str) -> WorkerError:
        try:
            code = self._proc.wait(timeout=30) if self._proc is not None else None
        except subprocess.TimeoutExpired:  # stdout closed but the process lingers: finish it
            _kill(self._proc)
            code = self._proc.returncode
        if self._stderr_pump is not None:
            self._stderr_pump.join(timeout=5)  # the process is gone: its stderr ends, so the tail is complete
        return WorkerError(f"upstream worker died (exit code {code}) {when}{self._tail()}")

    def _tail(self) -> str:
        text = self._log.text()
        return f"; last stderr lines:\n{text}" if text else ""


def _parse(line: str) -> dict | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def _kill(proc: subprocess.Popen | None) -> None:
    """Kill the worker's process group (it runs in its own session), then reap it."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
