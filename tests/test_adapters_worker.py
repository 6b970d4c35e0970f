"""The resident-worker protocol, end to end against the FAKE upstream program (tests/fake_upstream/fake_worker.py)."""

from __future__ import annotations

import json
import sys

import pytest

from baselines.upstream.errors import WorkerError
from baselines.upstream.worker import ResidentWorker, WorkerSpec
from tests.fake_upstream.layout import FAKE_WORKER


def _job(tmp_path, clip_id, n=3):
    job = {"harness": {
        "clip_id": clip_id, "chunk": 0, "pose_index": list(range(n)), "condition_image": None,
        "native_wh": [8, 6], "output_dir": str(tmp_path / clip_id / "out"), "frame_pattern": "frame_{:04d}.png",
        "scale": {"policy": "fixed", "factor": 1.0},
    }}
    path = tmp_path / clip_id / "job.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job))
    return {"op": "generate", "job": str(path)}


def _worker(**kw):
    return ResidentWorker(WorkerSpec(argv=(sys.executable, str(FAKE_WORKER), "--repo", "x"), **kw))


def test_one_resident_process_serves_several_clips_and_logs_stderr(tmp_path):
    worker = _worker(call_timeout_s=30)
    try:
        first = worker.call(_job(tmp_path, "a"), log_path=tmp_path / "a.log")
        second = worker.call(_job(tmp_path, "b"), log_path=tmp_path / "b.log")
    finally:
        worker.close()
    assert first["pid"] == second["pid"] and worker.starts == 1 and second["served"] == 2
    assert (tmp_path / "b" / "out" / "frame_0002.png").is_file()
    assert first["argv"] == ["--repo", "x"]  # argument list passed through, no shell
    # the fake prints to stdout while loading: it went to the log, not into the protocol
    assert "must not break the protocol" in (tmp_path / "a.log").read_text()


def test_a_crash_is_reported_and_the_next_clip_restarts_the_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPSTREAM_CRASH_ON", "bad")
    worker = _worker(call_timeout_s=30)
    try:
        pid = worker.call(_job(tmp_path, "ok1"))["pid"]
        with pytest.raises(WorkerError, match=r"died \(exit code 3\)[\s\S]*crashing on bad"):
            worker.call(_job(tmp_path, "bad"), log_path=tmp_path / "bad.log")
        after = worker.call(_job(tmp_path, "ok2"))
    finally:
        worker.close()
    assert after["pid"] != pid and worker.starts == 2
    assert "crashing on bad" in (tmp_path / "bad.log").read_text()


def test_an_upstream_error_keeps_the_worker_alive(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPSTREAM_FAIL_ON", "bad")
    worker = _worker(call_timeout_s=30)
    try:
        pid = worker.call(_job(tmp_path, "ok1"))["pid"]
        with pytest.raises(WorkerError, match="upstream error: ValueError: fake upstream told to fail on bad"):
            worker.call(_job(tmp_path, "bad"))
        assert worker.call(_job(tmp_path, "ok2"))["pid"] == pid
    finally:
        worker.close()


def test_a_hung_call_times_out_kills_the_worker_and_restarts_next(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPSTREAM_HANG_ON", "slow")
    worker = _worker(call_timeout_s=2)
    try:
        worker.call(_job(tmp_path, "ok1"))
        old = worker._proc
        with pytest.raises(WorkerError, match="timed out after 2 s"):
            worker.call(_job(tmp_path, "slow"))
        assert old.poll() is not None  # killed
        worker.call(_job(tmp_path, "ok2"))
    finally:
        worker.close()
    assert worker.starts == 2


def test_a_model_that_cannot_load_is_reported_then_not_retried_forever(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_UPSTREAM_FAIL_LOAD", "1")
    worker = _worker(call_timeout_s=30, max_start_failures=2)
    for _ in range(2):
        with pytest.raises(WorkerError, match="could not load the model: RuntimeError: fake upstream told to fail"):
            worker.call(_job(tmp_path, "a"))
    with pytest.raises(WorkerError, match="failed to start 2 times in a row; not retrying"):
        worker.call(_job(tmp_path, "a"))
    assert worker.starts == 2


def test_a_missing_interpreter_is_a_clear_error(tmp_path):
    worker = ResidentWorker(WorkerSpec(argv=(str(tmp_path / "no-python"), str(FAKE_WORKER))))
    with pytest.raises(WorkerError, match="cannot execute"):
        worker.call(_job(tmp_path, "a"))
