"""Smooth hand-held-like camera paths through a synthroom scene, in the style of RealEstate10K walkthroughs.

A path is planned over ``PLAN_FRAMES`` frames at ``FPS`` (longer clips extend it at constant speed; shorter
clips are a prefix, so a tiny test clip sees exactly the first frames of the full one). Its motion is
defined over the first ``MOTION_FRAMES`` = 190 frames (64 evaluated frames at stride 3): the camera
travels ``travel_m`` (about 1-3 m) while its heading turns by up to about 60 degrees. Five motion kinds:

* ``walk``: forward walk with a gentle turn;
* ``walk_pan``: forward walk that slows down for a pan in its middle third;
* ``pan_walk``: pan almost in place first, then walk forward;
* ``truck``: sideways motion, the camera looking 60-90 degrees off its direction of travel;
* ``arc``: curved walk looking toward the inside of the curve (orbit-like parallax).

Small pitch and roll oscillations and an eye height of 1.45-1.65 m (+- 1 cm bob) complete the motion.
Candidates are drawn from a seeded generator until one keeps ``MIN_CLEARANCE_M`` from every wall and
obstacle at every frame, looks into the room at furniture or pictures (checked with tiny 32x18 renders),
and moves enough.

Poses are OpenCV c2w in the scene's z-up world. They are rounded exactly as the RealEstate10K camera file
stores them (9 significant digits of w2c), so the frames are rendered with the very poses a reader loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gac_bench import cameras
from gac_bench.datasets.re10k import format_camera_line, parse_camera_line
from gac_bench.datasets.synthroom.floorplan import FloorPlan, floor_plan
from gac_bench.datasets.synthroom.raycast import camera_rays, intersect
from gac_bench.datasets.synthroom.scene import Scene

FPS = 30
PLAN_FRAMES = 200
MOTION_FRAMES = 190  # 64 evaluated frames at stride 3 span source frames 0..189
FX_NORM = 0.5625  # fx / width: a wide 83-degree horizontal field of view, like RealEstate10K
MIN_CLEARANCE_M = 0.45  # from any wall or obstacle footprint; the contract is 0.3 m, this leaves margin
MOTION_KINDS = ("walk", "walk_pan", "pan_walk", "truck", "arc")
MAX_ATTEMPTS = 400
MIN_SOLID_FRACTION = 0.06  # of a checked view that must show furniture or pictures
WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class MotionPlan:
    kind: str
    start_xy: tuple[float, float]
    eye_height_m: float
    yaw0_rad: float  # initial direction of travel
    travel_m: float  # distance covered over MOTION_FRAMES
    turn_rad: float  # change of the direction of travel over MOTION_FRAMES
    look_offset_rad: float  # camera yaw minus travel direction
    pan_rad: float  # extra camera yaw added during the pan window
    pan_window: tuple[float, float]  # in units of MOTION_FRAMES
    slow_speed: float  # relative speed at the middle of the pan window
    pitch0_rad: float
    wobble: tuple[float, ...]  # amplitudes/frequencies/phases of pitch, roll and height oscillations


# ---------------------------------------------------------------------------------------------- poses


def pose_from_angles(position, yaw_rad: float, pitch_rad: float, roll_rad: float) -> np.ndarray:
    """OpenCV c2w at ``position`` looking along yaw (from +x toward +y) and pitch (up positive), z-up world."""
    cp = np.cos(pitch_rad)
    forward = np.array([cp * np.cos(yaw_rad), cp * np.sin(yaw_rad), np.sin(pitch_rad)])
    right = np.cross(forward, WORLD_UP)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cr, sr = np.cos(roll_rad), np.sin(roll_rad)
    c2w = np.eye(4)
    c2w[:3, 0] = cr * right + sr * down
    c2w[:3, 1] = -sr * right + cr * down
    c2w[:3, 2] = forward
    c2w[:3, 3] = position
    return c2w


def intrinsics(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(K_norm, K): square pixels, principal point at the image centre."""
    fx = FX_NORM * width
    K_norm = cameras.intrinsics_matrix(FX_NORM, fx / height, 0.5, 0.5)
    return K_norm, cameras.K_norm_to_pixels(K_norm, width, height)


def as_stored(c2w: np.ndarray, K_norm: np.ndarray) -> np.ndarray:
    """Round poses through the camera-file text form so rendering uses exactly what readers will load."""
    out = np.empty_like(c2w)
    for i, pose in enumerate(c2w):
        _, _, w2c = parse_camera_line(format_camera_line(0, K_norm, cameras.invert_rigid(pose)), "pose")
        out[i] = cameras.invert_rigid(w2c)
    return out


# ---------------------------------------------------------------------------------------------- motion


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _bump(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Raised cosine: 0 outside [lo, hi], 1 in the middle."""
    u = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * u)


def trajectory(plan: MotionPlan, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame (positions (N, 3), yaw, pitch, roll) of a plan."""
    s = np.arange(num_frames) / (MOTION_FRAMES - 1)
    s_mid = (np.arange(num_frames) + 0.5) / (MOTION_FRAMES - 1)

    def travel_yaw(x):
        ease = 0.5 * np.clip(x, 0.0, 1.0) + 0.5 * _smoothstep(x)
        return plan.yaw0_rad + plan.turn_rad * ease

    speed = 1.0 - (1.0 - plan.slow_speed) * _bump(s_mid, *plan.pan_window)
    step_m = plan.travel_m * speed / speed[: MOTION_FRAMES - 1].sum()
    heading = travel_yaw(s_mid)
    steps = np.stack([step_m * np.cos(heading), step_m * np.sin(heading)], axis=-1)
    xy = np.concatenate([[plan.start_xy], plan.start_xy + np.cumsum(steps, axis=0)[:-1]])
    a_p, f_p, ph_p, a_r, f_r, ph_r, a_h, f_h, ph_h = plan.wobble
    z = plan.eye_height_m + a_h * np.sin(2 * np.pi * f_h * s + ph_h)
    pan = plan.pan_rad * _smoothstep((s - plan.pan_window[0]) / (plan.pan_window[1] - plan.pan_window[0]))
    yaw = travel_yaw(s) + plan.look_offset_rad + pan
    pitch = plan.pitch0_rad + a_p * np.sin(2 * np.pi * f_p * s + ph_p)
    roll = a_r * np.sin(2 * np.pi * f_r * s + ph_r)
    return np.column_stack([xy, z]), yaw, pitch, roll


def _free_run(fp: FloorPlan, xy, yaw: float, max_m: float = 6.0) -> float:
    """How far one can walk from ``xy`` along ``yaw`` keeping the clearance."""
    steps = np.arange(1, int(max_m / 0.1) + 1) * 0.1
    pts = np.asarray(xy) + steps[:, None] * np.array([np.cos(yaw), np.sin(yaw)])
    ok = fp.clearance(pts) >= MIN_CLEARANCE_M
    return float(steps[np.argmin(ok)] - 0.1) if not ok.all() else max_m


def _sample_start(rng: np.random.Generator, fp: FloorPlan) -> np.ndarray | None:
    areas = np.prod(fp.cells_hi - fp.cells_lo, axis=1)
    for _ in range(50):
        c = rng.choice(len(areas), p=areas / areas.sum())
        xy = rng.uniform(fp.cells_lo[c], fp.cells_hi[c])
        if fp.clearance(xy[None])[0] >= MIN_CLEARANCE_M + 0.3:
            return xy
    return None


def _deg(lo: float, hi: float, rng: np.random.Generator, signed: bool = True) -> float:
    value = np.deg2rad(rng.uniform(lo, hi))
    return float(value * rng.choice([-1.0, 1.0]) if signed else value)


def sample_plan(rng: np.random.Generator, fp: FloorPlan, kind: str, scale: float) -> MotionPlan | None:
    """A random plan of one motion kind; ``scale`` < 1 shortens the travel when long paths keep failing."""
    start = _sample_start(rng, fp)
    if start is None:
        return None
    turn, offset, pan, window, slow = 0.0, _deg(0, 8, rng), 0.0, (0.0, 1.0), 1.0
    if kind == "walk":
        travel, turn = rng.uniform(1.4, 2.8), _deg(12, 45, rng)
    elif kind == "walk_pan":
        travel, turn, pan, window, slow = rng.uniform(1.0, 2.2), _deg(0, 15, rng), _deg(20, 40, rng), (0.3, 0.7), 0.3
    elif kind == "pan_walk":
        travel, turn, pan, window, slow = rng.uniform(0.9, 2.0), _deg(0, 12, rng), _deg(25, 45, rng), (0.0, 0.4), 0.1
    elif kind == "truck":
        travel, turn, offset = rng.uniform(1.0, 2.2), _deg(0, 15, rng), _deg(60, 90, rng)
    else:  # arc: look toward the inside of the curve
        travel, turn = rng.uniform(1.4, 2.6), _deg(35, 55, rng)
        offset = float(np.sign(turn) * np.deg2rad(rng.uniform(15, 40)))
    # head where there is room to walk: the direction of longest free run among a few candidates
    yaws = rng.uniform(-np.pi, np.pi) + np.arange(12) * (np.pi / 6)
    runs = np.array([_free_run(fp, start, y) for y in yaws])
    yaw0 = float(yaws[int(np.argmax(runs + rng.uniform(0, 0.5, len(runs))))])
    wobble = (
        np.deg2rad(rng.uniform(0.3, 2.0)), rng.uniform(0.3, 1.2), rng.uniform(0, 2 * np.pi),
        np.deg2rad(rng.uniform(0.1, 0.8)), rng.uniform(0.3, 1.2), rng.uniform(0, 2 * np.pi),
        rng.uniform(0.0, 0.012), rng.uniform(1.0, 3.0), rng.uniform(0, 2 * np.pi),
    )  # fmt: skip
    return MotionPlan(
        kind=kind,
        start_xy=(float(start[0]), float(start[1])),
        eye_height_m=float(rng.uniform(1.45, 1.65)),
        yaw0_rad=yaw0,
        travel_m=float(travel * scale),
        turn_rad=turn,
        look_offset_rad=offset,
        pan_rad=pan,
        pan_window=window,
        slow_speed=slow,
        pitch0_rad=float(np.deg2rad(rng.uniform(-12.0, 1.0))),
        wobble=tuple(float(w) for w in wobble),
    )


# ---------------------------------------------------------------------------------------------- checks


def _moves_enough(c2w: np.ndarray) -> bool:
    """Over the evaluated span: turns at most ~65 degrees, and changes the view substantially."""
    last = min(MOTION_FRAMES, len(c2w)) - 1
    angle = float(cameras.geodesic_angle_rad(c2w[0, :3, :3], c2w[last, :3, :3]))
    shift = float(np.linalg.norm(c2w[last, :3, 3] - c2w[0, :3, 3]))
    return angle <= np.deg2rad(65.0) and (shift >= 1.0 or angle >= np.deg2rad(25.0)) and shift >= 0.5


def _looks_into_room(scene: Scene, c2w: np.ndarray) -> bool:
    """A few coarse renders: the view is mostly open (not a wall or cupboard at arm's length) and shows
    some furniture or pictures (not a bare wall, which would starve SfM and depth warping alike)."""
    cs = scene.compiled
    first_solid_surface = cs.solids[0].surface_base if cs.solids else np.iinfo(np.int32).max
    _, K = intrinsics(32, 18)
    for i in np.linspace(0, len(c2w) - 1, 5).round().astype(int):
        depth, sid = intersect(cs, camera_rays(K, c2w[i], 18, 32))
        if np.median(depth) < 1.6 or np.quantile(depth, 0.1) < 0.6:
            return False
        if np.mean(sid >= first_solid_surface) < MIN_SOLID_FRACTION:
            return False
    return True


def _valid(scene: Scene, fp: FloorPlan, plan: MotionPlan, num_frames: int) -> np.ndarray | None:
    positions, yaw, pitch, roll = trajectory(plan, num_frames)
    if fp.clearance(positions[:, :2]).min() < MIN_CLEARANCE_M:
        return None
    c2w = np.stack([pose_from_angles(p, y, pt, r) for p, y, pt, r in zip(positions, yaw, pitch, roll)])
    if not _moves_enough(c2w) or not _looks_into_room(scene, c2w):
        return None
    return c2w


def _fallback_pan(fp: FloorPlan) -> MotionPlan:
    """Last resort (never needed by the shipped seeds): a slow pan at the most open spot of the room."""
    lo, hi = fp.cells_lo.min(axis=0), fp.cells_hi.max(axis=0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 40), np.linspace(lo[1], hi[1], 40))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    best = grid[int(np.argmax(fp.clearance(grid)))]
    return MotionPlan("pan_walk", (float(best[0]), float(best[1])), 1.55, 0.0, 0.05, 0.0, 0.0, np.deg2rad(40.0),
                      (0.0, 1.0), 0.5, np.deg2rad(-5.0), (0.0,) * 9)  # fmt: skip


def plan_camera_path(scene: Scene, seed: int, num_frames: int = PLAN_FRAMES, kind: str | None = None):
    """(plan, c2w (N, 4, 4)) of the first valid plan drawn from ``seed``; N = max(num_frames, PLAN_FRAMES).

    ``kind`` picks the motion kind (one of MOTION_KINDS); by default the seed picks it.
    """
    n = max(num_frames, PLAN_FRAMES)
    fp = floor_plan(scene)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA3E7A]))
    drawn = MOTION_KINDS[int(rng.integers(len(MOTION_KINDS)))]
    kind = drawn if kind is None else kind
    if kind not in MOTION_KINDS:
        raise ValueError(f"unknown motion kind {kind!r}; expected one of {MOTION_KINDS}")
    for attempt in range(MAX_ATTEMPTS):
        scale = (1.0, 0.8, 0.6, 0.45)[attempt * 4 // MAX_ATTEMPTS]
        plan = sample_plan(rng, fp, kind, scale)
        if plan is not None and (c2w := _valid(scene, fp, plan, n)) is not None:
            return plan, c2w
    plan = _fallback_pan(fp)
    positions, yaw, pitch, roll = trajectory(plan, n)
    return plan, np.stack([pose_from_angles(p, y, pt, r) for p, y, pt, r in zip(positions, yaw, pitch, roll)])


def make_camera_path(scene: Scene, num_frames: int, seed: int, width: int = 256, height: int = 144,
                     kind: str | None = None):
    """(c2w (num_frames, 4, 4) OpenCV camera-to-world, K (3, 3) pixels) of a smooth walkthrough of ``scene``."""
    _, c2w = plan_camera_path(scene, seed, num_frames, kind)
    K_norm, K = intrinsics(width, height)
    return as_stored(c2w[:num_frames], K_norm), K
