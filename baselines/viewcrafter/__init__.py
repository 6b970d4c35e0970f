"""ViewCrafter adapter; see README.md."""

from baselines.viewcrafter.method import ViewCrafterMethod

__all__ = ["ViewCrafterMethod"]
