"""The worker side of the gac-bench upstream protocol. Standard library only, Python >= 3.8.

This file runs INSIDE an upstream method's own environment (it cannot import gac_bench or numpy). Each
``baselines/<method>/upstream_worker.py`` imports it by path and calls :func:`serve` with two functions:
``load()`` (build the model once) and ``handle(model, message)`` (serve one request).

Protocol (one JSON object per line):

====================  ===================================================================================
worker -> adapter     ``{"event": "ready", "protocol": 1, "pid": ...}`` once the model is loaded, or
                      ``{"event": "fatal", "error": ..., "traceback": ...}`` if loading failed (then exit 2)
adapter -> worker     ``{"id": n, "op": "generate", "job": "/abs/path/job.json"}`` (ops are per method)
worker -> adapter     ``{"id": n, "ok": true, ...result}`` or ``{"id": n, "ok": false, "error", "traceback"}``
adapter -> worker     ``{"id": n, "op": "shutdown"}``, or closing stdin: the worker exits
====================  ===================================================================================

Upstream code prints freely; so that nothing corrupts the protocol, :func:`serve` keeps a private copy of
the original stdout for protocol lines and points file descriptor 1 at stderr (the adapter logs stderr).
"""

from __future__ import annotations

import json
import os
import sys
import traceback

PROTOCOL_VERSION = 1


class Channel:
    """The protocol stream: a private duplicate of the process's original stdout."""

    def __init__(self):
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # everything else written to stdout (Python or C level) now lands in stderr
        sys.stdout = sys.stderr

    def send(self, message: dict) -> None:
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


def read_job(message: dict) -> dict:
    """The job file a request points to."""
    with open(message["job"]) as f:
        return json.load(f)


def _error(message_id, exc: BaseException) -> dict:
    return {"id": message_id, "ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def serve(load, handle, stdin=None) -> int:
    """Load the model, announce readiness, then answer requests until shutdown or end of input."""
    channel = Channel()
    stdin = stdin or sys.stdin
    try:
        model = load()
    except BaseException as exc:  # report every load failure (ImportError, CUDA OOM, SystemExit...) to the adapter
        channel.send({"event": "fatal", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
        return 2
    channel.send({"event": "ready", "protocol": PROTOCOL_VERSION, "pid": os.getpid()})
    for line in stdin:
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except ValueError as exc:
            channel.send(_error(None, exc))
            continue
        if message.get("op") == "shutdown":
            channel.send({"id": message.get("id"), "ok": True})
            break
        try:
            result = handle(model, message)
            channel.send(dict(result, id=message.get("id"), ok=True))
        except Exception as exc:  # one failed job does not end the worker
            channel.send(_error(message.get("id"), exc))
    return 0
