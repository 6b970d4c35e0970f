"""HunyuanWorld-Voyager adapter; see README.md."""

from baselines.voyager.method import VoyagerMethod

__all__ = ["VoyagerMethod"]
