"""GEN3C adapter; see README.md."""

from baselines.gen3c.method import Gen3cMethod

__all__ = ["Gen3cMethod"]
