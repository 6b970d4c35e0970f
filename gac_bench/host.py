"""The host machine: how many cores this process may use, and copies from host memory to a device."""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def h2d(x, device, dtype=None):
    """A host array on ``device`` without stalling the GPU: on CUDA the copy goes through pinned memory and is
    asynchronous (a copy from pageable memory would first wait for every queued kernel, so the host could no
    longer prepare the next batch while the GPU computes)."""
    import torch  # here, not at import: the synthroom render workers use this module without torch

    t = torch.as_tensor(x, dtype=dtype)
    device = torch.device(device)
    if device.type != "cuda" or t.device.type == "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)
