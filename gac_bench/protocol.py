"""Evaluation protocols as data. ``paper-v1`` is fixed (DESIGN.md); its text is printed in every table footer."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Protocol:
    """Everything that must match for two numbers to be comparable."""

    name: str
    num_frames: int
    trajectories: tuple[str, ...]
    forth_and_back_forward: int  # frames 0..forward-1 follow the dataset; the rest mirror them back
    reference_frame: int
    scored_from: int  # frames scored: scored_from .. num_frames-1
    pixel_metrics: str
    lpips: str
    fid: str
    pose: str
    aggregation: str

    def to_dict(self) -> dict:
        return asdict(self)

    def footer(self) -> str:
        return (
            f"Protocol {self.name}: {self.num_frames} frames, reference = frame {self.reference_frame}, "
            f"frames {self.scored_from}..{self.num_frames - 1} scored. {self.pixel_metrics} {self.lpips} "
            f"{self.fid} {self.pose} {self.aggregation}"
        )


PAPER_V1 = Protocol(
    name="paper-v1",
    num_frames=64,
    trajectories=("dataset", "forth-and-back"),
    forth_and_back_forward=32,
    reference_frame=0,
    scored_from=1,
    pixel_metrics="PSNR, SSIM: float [0,1], data range 1 (torchmetrics, SSIM Gaussian 11x11 sigma 1.5).",
    lpips="LPIPS: AlexNet v0.1 (lpips package), inputs mapped to [-1,1] inside the metric.",
    fid="FID: Inception-v3 pool3 2048-d, pooled over every scored frame of the split vs the ground truth; KID beside.",
    pose=(
        "R_err/T_err: poses relative to frame 0, translations divided by each trajectory's furthest camera distance, "
        "mean geodesic angle (rad) and mean L2 over frames 1..N-1."
    ),
    aggregation="Per frame -> mean per clip -> mean over clips, 95% bootstrap CI over clips (2000 resamples, seed 0).",
)

PROTOCOLS = {PAPER_V1.name: PAPER_V1}
TRAJECTORIES = PAPER_V1.trajectories
