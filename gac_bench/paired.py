"""Paired comparison of two methods (or two variants of one) over the clips both scored.

The difference of clip means, bootstrapped over clips: the clip-to-clip spread that two rows share (a hard room is
hard for both) cancels, so a paired interval is much narrower than the two rows' own intervals side by side.
"""

from __future__ import annotations

import numpy as np

from gac_bench.leaderboard import Cell, bootstrap_ci


def paired_difference(a: dict[str, float], b: dict[str, float]) -> Cell | None:
    """Mean of a - b over the clip ids both have, with a 95% percentile bootstrap CI (the leaderboard's resampling:
    2000 resamples, seed 0, clips in id order). None when they share no clip."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    diff = np.array([a[k] - b[k] for k in common], dtype=np.float64)
    low, high = bootstrap_ci(diff)
    return Cell(float(diff.mean()), low, high, len(diff))
