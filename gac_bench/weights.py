"""Every weight file a metric or method needs: name, expected path, size, sha256, source. Nothing downloads.

A metric whose file is missing is reported as missing (with :meth:`WeightFile.fix_hint`), never computed with
random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gac_bench.paths import torch_home


@dataclass(frozen=True)
class WeightFile:
    name: str
    used_by: str
    path_fn: Callable[[], Path]
    url: str
    size_bytes: int | None = None
    sha256: str | None = None  # full digest where known
    sha256_prefix: str | None = None  # torch hub names carry the first 8 hex digits of the sha256

    @property
    def path(self) -> Path:
        return self.path_fn()

    def present(self) -> bool:
        return self.path.is_file()

    def fix_hint(self) -> str:
        return (
            f"{self.name} not found at {self.path}; on a machine with internet run "
            f"`mkdir -p {self.path.parent} && curl -L -o {self.path} {self.url}` and copy it here "
            f"(or point TORCH_HOME / GAC_BENCH_HOME at a folder that has it)"
        )


LPIPS_ALEXNET = WeightFile(
    name="alexnet-owt-7be5be79.pth",
    used_by="LPIPS (AlexNet backbone, torchvision)",
    path_fn=lambda: torch_home() / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256_prefix="7be5be79",
)

WEIGHT_FILES: dict[str, WeightFile] = {LPIPS_ALEXNET.name: LPIPS_ALEXNET}
