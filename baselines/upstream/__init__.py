"""Shared mechanics of the adapters that run official repositories (CameraCtrl, ViewCrafter, GEN3C, SEVA, Voyager).

* :mod:`.errors` -- :class:`DryRunComplete` (dry runs) and :class:`WorkerError` (upstream failures).
* :mod:`.worker` / :mod:`.serve` -- the resident worker: adapter side and (stdlib-only) upstream side.
* :mod:`.chunking` -- covering N poses with a fixed frame count per call.
* :mod:`.transforms` -- declared resize/crop between the protocol and a method's native resolution.
* :mod:`.conventions` -- camera conversions not in :mod:`gac_bench.cameras` (PyTorch3D, translation scale).
* :mod:`.scale` -- translation-scale policies.  :mod:`.requirements` -- repo/interpreter/checkpoint checks.
* :mod:`.method` -- :class:`UpstreamMethod`, the base class of the adapters.
"""

from baselines.upstream.errors import DryRunComplete, WorkerError

__all__ = ["DryRunComplete", "WorkerError"]
