"""Datasets: every reader produces :class:`~gac_bench.datasets.clip.Clip` objects at the evaluation resolution."""

from gac_bench.datasets.clip import Clip, ClipDataError

__all__ = ["Clip", "ClipDataError"]
