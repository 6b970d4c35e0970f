"""SEVA (Stable Virtual Camera) adapter; see README.md."""

from baselines.seva.method import SevaMethod

__all__ = ["SevaMethod"]
