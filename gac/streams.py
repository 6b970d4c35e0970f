"""Training data for one or many ranks: every sample comes from a *stream*, and streams are what ranks share out.

A job with W ranks and ``--batch B`` forwards per step has S = W * B streams; forward m of rank r reads stream
r * B + m. Stream s owns the clips s, s + S, s + 2S, ... (only those are read from disk on its rank) and visits
them in a fresh order every epoch, drawn from (seed, epoch, s); its sample layouts, timesteps and noise come from
its own generators. So in one epoch the streams together visit every clip exactly once, and a single process with
``--batch W * B`` sees exactly the samples of W ranks with ``--batch B`` (the FSDP equivalence test rests on this).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def stream_clips(num_clips: int, num_streams: int, stream: int) -> list[int]:
    """Global indices of the clips stream ``stream`` owns."""
    if num_streams > num_clips:
        raise ValueError(f"{num_streams} data streams (ranks x --batch) but only {num_clips} clips: each stream needs "
                         "at least one clip; use fewer ranks or a smaller --batch")  # fmt: skip
    return list(range(stream, num_clips, num_streams))


def epoch_order(shard: list[int], seed: int, epoch: int, stream: int) -> list[int]:
    """The order in which a stream visits its clips in ``epoch`` (deterministic in seed, epoch, stream)."""
    perm = np.random.default_rng([seed, epoch, stream]).permutation(len(shard))
    return [shard[i] for i in perm]


@dataclass
class DataStream:
    """One stream's position: which clip comes next, and the generator for everything else it draws.

    ``local`` maps the stream's global clip indices to indices of the clips loaded on this rank."""

    stream: int
    shard: list[int]
    seed: int
    local: dict[int, int]
    epoch: int = 0
    pos: int = 0
    rng: np.random.Generator = field(init=False)

    def __post_init__(self):
        self.rng = np.random.default_rng([self.seed, self.stream])

    def next_clip(self) -> int:
        """The next clip (index among the clips loaded on this rank); a new epoch starts when the shard is done."""
        order = epoch_order(self.shard, self.seed, self.epoch, self.stream)
        if self.pos >= len(order):
            self.epoch, self.pos = self.epoch + 1, 0
            order = epoch_order(self.shard, self.seed, self.epoch, self.stream)
        clip = order[self.pos]
        self.pos += 1
        return self.local[clip]

    def state(self) -> dict:
        return {"stream": self.stream, "epoch": self.epoch, "pos": self.pos, "rng": self.rng.bit_generator.state}

    def mark(self) -> None:
        """Remember the state before drawing a sample: packing holds one drawn sample back (it decides whether the
        sample fits the current forward), so a checkpoint must resume from before that sample."""
        self._mark = self.state()

    def resume_state(self) -> dict:
        """The state a checkpoint saves: before the last sample drawn (held back by packing), else now."""
        return getattr(self, "_mark", None) or self.state()

    def restore(self, state: dict) -> None:
        if int(state["stream"]) != self.stream:
            raise ValueError(f"stream state of stream {state['stream']} given to stream {self.stream}")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self.rng.bit_generator.state = state["rng"]


def rank_streams(rank: int, batch: int) -> list[int]:
    """The stream ids of one rank's forwards."""
    return [rank * batch + m for m in range(batch)]


def clips_to_load(num_clips: int, world: int, rank: int, batch: int) -> list[int]:
    """Global indices of the clips a rank reads: the union of its streams' shards, ascending."""
    S = world * batch
    return sorted(i for s in rank_streams(rank, batch) for i in stream_clips(num_clips, S, s))


def make_streams(num_clips: int, world: int, rank: int, batch: int, seed: int) -> list[DataStream]:
    S = world * batch
    loaded = clips_to_load(num_clips, world, rank, batch)
    local = {g: i for i, g in enumerate(loaded)}
    return [DataStream(s, stream_clips(num_clips, S, s), seed, local) for s in rank_streams(rank, batch)]
