"""CameraCtrl (svd branch) adapter; see README.md."""

from baselines.cameractrl.method import CameraCtrlMethod

__all__ = ["CameraCtrlMethod"]
