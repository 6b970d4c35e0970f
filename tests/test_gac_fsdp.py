"""FSDP2 training under torchrun on CPU (gloo): the same losses as one process, sharded save, resume on another
rank count, export; and the data streams that make ranks see every clip once per epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gac.streams import clips_to_load, epoch_order, make_streams, stream_clips

pytest.importorskip("diffusers")

from gac.testing import write_fixture_clip, write_tiny_vae  # noqa: E402

H, W = 32, 64
BASE = ["--preset", "gac-tiny", "--width", str(W), "--height", str(H), "--device", "cpu", "--warmup", "2",
        "--lr", "3e-3", "--frames", "3", "--max-stride", "1", "--log-every", "1", "--load-workers", "1"]  # fmt: skip


# ------------------------------------------------------------------------------------------------ streams


@pytest.mark.parametrize("world,batch", [(1, 1), (2, 1), (2, 3), (4, 2)])
def test_streams_visit_every_clip_once_per_epoch(world, batch):
    n = 23
    visited = []
    for rank in range(world):
        for st in make_streams(n, world, rank, batch, seed=7):
            loaded = clips_to_load(n, world, rank, batch)
            visited += [loaded[st.next_clip()] for _ in range(len(st.shard))]  # one epoch of this stream
    assert sorted(visited) == list(range(n))
    # ranks read disjoint clips that together are all of them
    per_rank = [set(clips_to_load(n, world, r, batch)) for r in range(world)]
    assert sum(len(s) for s in per_rank) == n and set().union(*per_rank) == set(range(n))


def test_stream_orders_change_per_epoch_and_are_deterministic():
    shard = stream_clips(40, 2, 1)
    assert shard == list(range(1, 40, 2))
    a, b = epoch_order(shard, 0, 0, 1), epoch_order(shard, 0, 1, 1)
    assert sorted(a) == sorted(b) == shard and a != b
    assert epoch_order(shard, 0, 0, 1) == a
    st = make_streams(40, 2, 1, 1, seed=0)[0]
    first = [st.next_clip() for _ in range(25)]  # crosses into epoch 1
    assert st.epoch == 1 and st.pos == 5
    saved = st.state()
    nxt = [st.next_clip() for _ in range(3)]
    again = make_streams(40, 2, 1, 1, seed=0)[0]
    again.restore(saved)
    assert [again.next_clip() for _ in range(3)] == nxt and first[:20] != first[20:] + first[:0]


def test_more_streams_than_clips_is_a_clear_error():
    with pytest.raises(ValueError, match="4 data streams .* only 3 clips"):
        stream_clips(3, 4, 0)


# ------------------------------------------------------------------------------------------------ torchrun


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp")
    for i in range(4):
        write_fixture_clip(root / "data", clip_id=f"fix{i:02d}", n=12, height=H, width=W, seed=i)
    write_tiny_vae(root / "vae")
    return root


def _run(root: Path, out: str, nproc: int | None, *extra: str) -> list[dict]:
    args = BASE + ["--data-root", str(root / "data"), "--vae", str(root / "vae"), "--out", str(root / out)] + list(extra)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if nproc is None:
        cmd = [sys.executable, "-m", "gac.train", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "gac.train", *args]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = root / out / "train_log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_two_ranks_match_one_process_and_resume_on_one_rank(data):
    single = _run(data, "single", None, "--steps", "3", "--batch", "2", "--save-every", "1000")
    fsdp = _run(data, "fsdp", 2, "--steps", "3", "--batch", "1", "--save-every", "1000")
    # tolerance: fp32 on CPU, the same samples; only the order of reductions differs
    np.testing.assert_allclose([r["loss"] for r in fsdp], [r["loss"] for r in single], rtol=1e-4)
    np.testing.assert_allclose([r["grad_norm"] for r in fsdp], [r["grad_norm"] for r in single], rtol=1e-4)
    assert fsdp[0]["tokens"] == single[0]["tokens"]

    # stop after two steps on two ranks (sharded save), resume on one rank with the same two streams
    part = _run(data, "part", 2, "--steps", "2", "--batch", "1", "--save-every", "2")
    np.testing.assert_allclose([r["loss"] for r in part], [r["loss"] for r in fsdp[:2]], rtol=1e-4)
    dcp_root = data / "part" / "dcp"
    assert (dcp_root / "latest").read_text().strip() == "step_000002"
    state = json.loads((dcp_root / "step_000002" / "train_state.json").read_text())
    assert state["world"] == 2 and state["num_streams"] == 2
    rest = _run(data, "part", 1, "--steps", "3", "--batch", "2", "--save-every", "1000", "--resume")
    np.testing.assert_allclose(rest[-1]["loss"], fsdp[2]["loss"], rtol=1e-4)
    assert rest[-1]["step"] == 3

    # the sharded step-2 checkpoint exports to the one-folder format, equal to what rank 0 wrote at the end
    from gac.checkpoint import load_checkpoint
    from gac.dist_checkpoint import main as export

    export([str(dcp_root / "step_000002"), str(data / "exported")])
    m_exp, cfg_exp = load_checkpoint(data / "exported")
    assert cfg_exp["step"] == 2
    m_last, _ = load_checkpoint(data / "single" / "last")  # a different run: shapes, not values
    assert {k: v.shape for k, v in m_exp.state_dict().items()} == {k: v.shape for k, v in m_last.state_dict().items()}
    assert (data / "exported" / "vae" / "config.json").is_file()


def test_export_of_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    from gac.dist_checkpoint import main as export

    with pytest.raises(SystemExit) as exc:
        export([str(tmp_path / "nothing"), str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "not a sharded GaC checkpoint" in capsys.readouterr().err


def test_freeze_understanding_leaves_the_generation_path_trainable():
    from gac.model import build_model, gac_tiny
    from gac.parallel import freeze_understanding

    model = build_model(gac_tiny())
    total = sum(p.numel() for p in model.parameters())
    frozen = freeze_understanding(model)
    names = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == sum(p.numel() for n, p in model.named_parameters() if n in names) and 0 < frozen < total
    assert "embed_tokens.weight" in names and "layers.0.attn.und.q_proj.weight" in names
    assert "layers.0.mlp_und.gate.weight" in names or any(n.startswith("layers.0.mlp_und.") for n in names)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "layers.0.attn.gen.q_proj.weight" in trainable and "vae2llm.weight" in trainable
    assert not any(".und." in n or "_und." in n for n in trainable)



def test_fsdp_step_benchmark_runs_sharded_from_the_meta_device(tmp_path):
    """benchmarks/gac_fsdp_step.py (the GPU measurement of issue 13) on two gloo ranks with gac-tiny: the model is
    sharded before it is materialised, steps run, the record has what the write-up needs."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "step.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(root / "benchmarks" / "gac_fsdp_step.py"), "--debug-cpu", "--layers", "2", "--steps", "1",
           "--ac", "selective", "--freeze-und", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(root)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = json.loads(out.read_text())
    assert rec["world"] == 2 and rec["layers"] == 2 and rec["activation_checkpointing"] == "selective"
    assert rec["seconds_per_step"] > 0 and rec["tokens_per_gpu_step"] > 0 and rec["frozen_und_params"] > 0
