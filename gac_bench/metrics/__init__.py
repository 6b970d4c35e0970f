"""Metrics. Pixel metrics compare generated frames with ground truth frame by frame; pooled metrics (FID, KID)
work on the whole split; pose metrics estimate cameras from the generated frames.

Inputs at the edges are uint8 (N, H, W, 3) RGB; conversion to each metric's convention happens inside the metric.
"""

from gac_bench.metrics.base import MetricUnavailable

__all__ = ["MetricUnavailable"]
