"""Pose estimators by name. Entries are ``module:Class`` strings so that listing names imports nothing heavy."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from gac_bench.poses.base import PoseEstimator

ESTIMATORS: dict[str, str] = {
    "colmap": "gac_bench.poses.colmap:ColmapEstimator",
    "vggt": "gac_bench.poses.vggt:VggtEstimator",
}


class UnknownEstimatorError(KeyError):
    """No estimator has this name. The message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; print it plainly
        return str(self.args[0])


def known_estimators() -> list[str]:
    return sorted(ESTIMATORS)


def get_estimator_class(name: str) -> type[PoseEstimator]:
    if name not in ESTIMATORS:
        close = difflib.get_close_matches(name, known_estimators(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownEstimatorError(
            f"unknown pose estimator {name!r}{hint}; known estimators: {', '.join(known_estimators())}"
        )
    module_name, cls_name = ESTIMATORS[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)


def get_estimator(name: str, device: str = "cpu", **options: Any) -> PoseEstimator:
    """An estimator instance; ``options`` go to its constructor (unknown options raise TypeError).

    Constructing never loads weights or checks packages; call ``check_available()`` for that.
    """
    return get_estimator_class(name)(device=device, **options)
