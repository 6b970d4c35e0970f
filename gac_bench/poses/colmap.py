"""Weight-free pose estimator: SfM with pycolmap (SIFT, one PINHOLE camera, CPU).

Defaults (version 4, benchmarks/colmap_speed.md): GLOMAP's global mapper, SIFT at the frame's own size
(``sift_first_octave=0``), sequential matching with ``overlap=3`` (every pair when at most 32 distinct frames are
estimated, ``exhaustive_up_to``), byte-identical frames estimated once (``dedupe``); SIFT and two-view verification
on two threads with the poses of one (``extract_threads``, ``verify_threads``), and a lighter global mapping: the
longest tracks until each frame has 75 (``tracks_per_view``) for global positioning and bundle adjustment, no
position-only bundle-adjustment stage (``ba_fixed_rotation_stage``), no point colours (``extract_colors``). Version 3
(4.4 s per 64-frame dataset clip, 3 s per forth-and-back clip on synthroom's ground truth, 2 cores) is
``tracks_per_view=0, ba_fixed_rotation_stage=True, extract_colors=True`` (the thread counts do not change its
poses); ``exhaustive_up_to=0`` on top is version 2; ``mapper="incremental", sift_first_octave=-1, overlap=10,
dedupe=False, exhaustive_up_to=0`` is version 1 (24-34 s).

Pipeline per clip (all N frames at once, in a temporary folder):

1. frames -> lossless BMP ``0000.bmp`` ... (only the distinct ones with ``dedupe``; version 3 wrote PNG: the same
   pixels, so the same keypoints, 0.15 s slower);
2. the images enter the database in index order (one camera: PINHOLE with the request's K held fixed when K is
   given, ``ba_refine_focal_length`` / ``principal_point`` / ``extra_params`` all False, else SIMPLE_PINHOLE with
   the focal length refined and the principal point at the image centre), then SIFT (CPU) on ``extract_threads``
   fills in their features. Importing first fixes the image ids: left to itself a multi-threaded extractor numbers
   images in completion order, and the mapper's tie-breaks (hence the poses: 0.3 in c2w on the test clip) follow
   the ids;
3. matching of an explicit pair list (see :func:`match_pairs`). Default ``"sequential"``: each frame with
   the next ``overlap`` = 3 frames plus COLMAP's quadratic overlap (i + 2^k, k < overlap); every pair instead
   when at most ``exhaustive_up_to`` = 32 distinct frames are estimated (the forward half of a deduplicated
   forth-and-back clip: no duplicates left, and the sequential pairs left GLOMAP too few long baselines).
   Forth-and-back clips need no explicit loop pairs: the return frames register by PnP against 3D points the
   forward frames triangulated (tracks are transitive), and pairs around the turn (j, 63 - j for j >= 27) are
   within the overlap anyway. Measured on 64-frame synthetic clips at 256x144, sequential gave the best
   accuracy/time; ``"sequential+retrieval"`` (plus each frame's ``retrieval_k`` most similar frames
   further away, by thumbnail correlation: generic loop detection, COLMAP's own needs a vocabulary tree
   file) and ``"exhaustive"`` (all pairs, about 2x slower) both **failed** on the whole forth-and-back clip
   without ``dedupe`` (version 1: R_err 0.25 rad instead of 1e-3): the (near-)duplicate pairs of a revisit
   dominate the correspondence counts, the mapper then initialises from a short-baseline pair and the
   duplicates let that distorted model grow to every frame. They are kept as options for experiments.
   Descriptor matching runs on ``num_threads`` = 1: with two matcher threads the matches themselves differed
   between runs (3 repeats in 30 on a 496-pair clip; the threads share each image's descriptor index), and the
   poses with them (up to 2e-3 in c2w on the test clip, 0.03 in one CI run). Two-view verification (an E, F and
   H LO-RANSAC per pair, seeded per pair with ``seed``: about 90% of this step) then runs apart, on ``verify_threads``
   = 2; its geometries do not depend on the thread count or order (``verify_threads=0``: inside the matcher, as
   in version 3);
4. GLOMAP's global mapping with ``random_seed=0`` on one thread (Ceres' multi-threaded solves sum in a varying
   order, and two threads were not faster on these small problems). Global positioning and the iterative bundle
   adjustment see only the longest tracks, added until every frame has ``tracks_per_view`` = 75 (145-260 of
   250-580 tracks on 64-frame synthroom-val clips; 0 keeps all, as version 3); retriangulation then triangulates
   all matches again and refines. Same frames, same poses: bit-identical at the default thread counts and at one
   thread;
5. the reconstruction with the most registered images is used; frames outside it are ``registered=False``.
   (``mapper="incremental"``: when it misses frames, mapping is repeated with a smaller initial triangulation
   angle, 16 then 4 degrees, see :meth:`ColmapEstimator._map_with_fallback`, and the larger model kept.)

COLMAP's ``cam_from_world`` maps x_cam = R x_world + t (OpenCV axes), so c2w = inv([R | t]).
``confidence`` is the number of triangulated 3D points each registered frame observes (0 when unregistered).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gac_bench.cameras import invert_rigid
from gac_bench.host import available_cores
from gac_bench.poses.base import PoseEstimate, PoseEstimator, check_frames, nan_poses

MATCHING_MODES = ("sequential", "sequential+retrieval", "exhaustive")
MAPPERS = ("incremental", "global")


def _image_name(i: int) -> str:
    # BMP: lossless like PNG (the same keypoints), but no compression to write or decode: 0.15 s less per
    # 64-frame clip
    return f"{i:04d}.bmp"


def default_threads(cap: int = 8) -> int:
    """Threads for SIFT extraction and two-view verification: the cores this process may use, at most ``cap``."""
    return max(1, min(cap, available_cores()))


def sequential_pairs(num_frames: int, overlap: int, quadratic: bool = True) -> set[tuple[int, int]]:
    """Pairs (i, j), i < j, with j - i <= overlap, plus j - i = 2^k (k < overlap) when ``quadratic``."""
    gaps = set(range(1, overlap + 1))
    if quadratic:
        gaps |= {2**k for k in range(overlap)}
    return {(i, i + g) for i in range(num_frames) for g in gaps if i + g < num_frames}


def thumbnail_descriptors(frames: np.ndarray, size: tuple[int, int] = (32, 18)) -> np.ndarray:
    """(N, D) unit-norm, zero-mean grey thumbnails (area-averaged to ``size`` = (w, h))."""
    grey = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA) for f in frames]
    d = np.stack(grey).reshape(len(frames), -1).astype(np.float64)
    d -= d.mean(1, keepdims=True)
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    return d / np.where(norm > 0, norm, 1.0)


def retrieval_pairs(frames: np.ndarray, k: int, min_gap: int) -> set[tuple[int, int]]:
    """For every frame, its ``k`` most similar frames at least ``min_gap`` + 1 indices away (ties: lower index)."""
    if k <= 0:
        return set()
    desc = thumbnail_descriptors(frames)
    sim = desc @ desc.T
    n = len(frames)
    pairs = set()
    for i in range(n):
        far = [j for j in range(n) if abs(i - j) > min_gap]
        # lexsort: last key is primary -> highest similarity first, then lowest index
        ranked = [far[m] for m in np.lexsort((np.asarray(far), -sim[i, far]))] if far else []
        pairs |= {(min(i, j), max(i, j)) for j in ranked[:k]}
    return pairs


def match_pairs(frames: np.ndarray, mode: str, overlap: int, retrieval_k: int) -> list[tuple[int, int]]:
    """The sorted image pairs to match for ``mode`` (one of :data:`MATCHING_MODES`)."""
    n = len(frames)
    if mode == "exhaustive":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    pairs = sequential_pairs(n, overlap)
    if mode == "sequential+retrieval":
        pairs |= retrieval_pairs(frames, retrieval_k, overlap)
    elif mode != "sequential":
        raise ValueError(f"matching must be one of {MATCHING_MODES}, got {mode!r}")
    return sorted(pairs)


def unique_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first occurrence of each distinct frame (in order) and, per frame, its index among them."""
    first: dict[bytes, int] = {}
    inverse = np.empty(len(frames), dtype=np.int64)
    keep = []
    for i, frame in enumerate(frames):
        key = hashlib.sha256(np.ascontiguousarray(frame).tobytes()).digest()
        if key not in first:
            first[key] = len(keep)
            keep.append(i)
        inverse[i] = first[key]
    return np.array(keep, dtype=np.int64), inverse


class ColmapEstimator(PoseEstimator):
    """pycolmap SfM (GLOMAP by default) on the frames of one clip (CPU, deterministic, no weights).

    ``device`` is accepted for a uniform interface and ignored: SIFT and mapping run on the CPU.
    """

    name = "colmap"
    version = "4"

    def __init__(
        self,
        device: str = "cpu",
        matching: str = "sequential",
        overlap: int = 3,
        retrieval_k: int = 5,
        max_num_features: int = 8192,
        num_threads: int = 1,
        seed: int = 0,
        init_min_tri_angle_deg: tuple[float, ...] = (16.0, 4.0),
        init_max_forward_motion: float = 0.95,
        workdir: str | None = None,
        mapper: str = "global",
        dedupe: bool = True,
        sift_first_octave: int = 0,
        global_ba_iterations: int = 3,
        exhaustive_up_to: int = 32,
        extract_threads: int | None = None,
        verify_threads: int | None = None,
        ransac_min_num_trials: int = 100,
        tracks_per_view: int = 75,
        ba_fixed_rotation_stage: bool = False,
        extract_colors: bool = False,
    ) -> None:
        super().__init__(device=device)
        if mapper not in MAPPERS:
            raise ValueError(f"mapper must be one of {MAPPERS}, got {mapper!r}")
        self.mapper = mapper
        self.dedupe = bool(dedupe)
        if matching not in MATCHING_MODES:
            raise ValueError(f"matching must be one of {MATCHING_MODES}, got {matching!r}")
        self.matching = matching
        self.overlap = int(overlap)
        self.retrieval_k = int(retrieval_k)
        self.max_num_features = int(max_num_features)
        self.num_threads = int(num_threads)
        self.seed = int(seed)
        if isinstance(init_min_tri_angle_deg, str):  # "16,4" from a command line
            init_min_tri_angle_deg = init_min_tri_angle_deg.split(",")
        self.init_min_tri_angle_deg = tuple(float(a) for a in np.atleast_1d(init_min_tri_angle_deg))
        self.init_max_forward_motion = float(init_max_forward_motion)
        # -1 (COLMAP's default) detects on a 2x upsampled image: at 256x144 that is most of the extraction time and
        # many weak features; 0 detects at the frame's own size (benchmarks/colmap_speed.md)
        self.sift_first_octave = int(sift_first_octave)
        self.global_ba_iterations = int(global_ba_iterations)  # GLOMAP's rounds of bundle adjustment + filtering
        # "sequential" matches every pair when at most this many (distinct) frames are estimated: the 32 forward
        # frames of a forth-and-back clip. Their short path gave GLOMAP too few long-baseline pairs: on nearly
        # forward motion (synthroom room03) rotation averaging failed (R_err 0.154); all 496 pairs fix it
        # (benchmarks/colmap_speed.md, version 3). 0 turns it off.
        self.exhaustive_up_to = int(exhaustive_up_to)
        # SIFT threads. The images enter the database first, in index order (import_images), so their ids do not
        # depend on which thread finishes first: the keypoints and poses are those of one thread
        # (None: the available cores, at most 8; the poses do not depend on it: 2 on the dev machine, 8 on the GPU
        # host's 16 cores, 3.7 -> 2.5 s median there, benchmarks/colmap_speed.md)
        self.extract_threads = default_threads() if extract_threads is None else int(extract_threads)
        # two-view verification threads, run after matching (which stays on num_threads): each pair's RANSAC is
        # seeded on its own, so the verified geometries do not depend on the thread count. 0 verifies inside the
        # matcher, on its threads (version 3)
        self.verify_threads = default_threads() if verify_threads is None else int(verify_threads)
        self.ransac_min_num_trials = int(ransac_min_num_trials)  # per model (E, F, H) and pair; COLMAP's 100
        # GLOMAP's track_required_tracks_per_view: global positioning and its bundle adjustment use the longest
        # tracks until every frame has this many (0: every track); retriangulation then uses all matches again
        self.tracks_per_view = int(tracks_per_view)
        self.ba_fixed_rotation_stage = bool(ba_fixed_rotation_stage)  # GLOMAP's position-only BA before each round
        self.extract_colors = bool(extract_colors)  # read the images again for 3D point colours (unused here)
        self.workdir = workdir  # keep the database and model there (debugging) instead of a temp folder

    def options(self) -> dict[str, Any]:
        return {
            "matching": self.matching,
            "overlap": self.overlap,
            "retrieval_k": self.retrieval_k,
            "max_num_features": self.max_num_features,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "init_min_tri_angle_deg": self.init_min_tri_angle_deg,
            "init_max_forward_motion": self.init_max_forward_motion,
            "mapper": self.mapper,
            "dedupe": self.dedupe,
            "sift_first_octave": self.sift_first_octave,
            "global_ba_iterations": self.global_ba_iterations,
            "exhaustive_up_to": self.exhaustive_up_to,
            "extract_threads": self.extract_threads,
            "verify_threads": self.verify_threads,
            "ransac_min_num_trials": self.ransac_min_num_trials,
            "tracks_per_view": self.tracks_per_view,
            "ba_fixed_rotation_stage": self.ba_fixed_rotation_stage,
            "extract_colors": self.extract_colors,
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "options": self.options()}

    def check_available(self) -> str | None:
        try:
            import pycolmap  # noqa: F401
        except ImportError:
            return "the colmap pose estimator needs pycolmap: pip install pycolmap"
        return None

    def estimate(self, frames: np.ndarray, K: np.ndarray | None = None) -> PoseEstimate:
        self.require_available()
        check_frames(frames, K)
        frames = np.asarray(frames)
        K = None if K is None else np.asarray(K, dtype=np.float64)
        if not self.dedupe:
            return self._estimate_frames(frames, K)
        # dedupe: byte-identical frames (the return half of forth-and-back ground truth) estimated once, sharing the
        # pose: half the work on forth-and-back, and no zero-baseline duplicate pairs. With the incremental mapper
        # (version 1) it worsened that floor (mean R_err 0.039 rad against 0.023: it initialised worse on half the
        # views); with the global mapper it is the faster and, on 7 of 8 rooms, the better choice
        # (benchmarks/colmap_speed.md)
        unique, inverse = unique_frames(frames)
        if len(unique) < 2:  # nothing to reconstruct from one image
            c2w, K_out = nan_poses(len(frames))
            return PoseEstimate(c2w, K_out, np.zeros(len(frames), bool), np.zeros(len(frames)), self.name,
                                {"version": self.version, "unique_frames": len(unique), "options": self.options()})  # fmt: skip
        est = self._estimate_frames(frames[unique], K)
        info = {**est.info, "unique_frames": int(len(unique))}
        return PoseEstimate(est.c2w[inverse], est.K[inverse], est.registered[inverse], est.confidence[inverse],
                            est.estimator, info)  # fmt: skip

    def _estimate_frames(self, frames: np.ndarray, K: np.ndarray | None) -> PoseEstimate:
        if self.workdir is not None:
            Path(self.workdir).mkdir(parents=True, exist_ok=True)
            return self._estimate_in(Path(self.workdir), frames, K)
        with tempfile.TemporaryDirectory(prefix="gac_colmap_") as tmp:
            return self._estimate_in(Path(tmp), frames, K)

    # ------------------------------------------------------------------------------------------ steps

    def _estimate_in(self, root: Path, frames: np.ndarray, K: np.ndarray | None) -> PoseEstimate:
        import pycolmap

        previous_level = pycolmap.logging.minloglevel
        pycolmap.logging.minloglevel = 2  # glog INFO/WARNING lines would flood every run's stderr
        try:
            timing: dict[str, float] = {}
            t0 = time.perf_counter()
            image_dir, db = self._write_images(root, frames)
            self._extract(pycolmap, db, image_dir, frames, K)
            timing["extract_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            pairs = match_pairs(frames, self._matching_for(len(frames)), self.overlap, self.retrieval_k)
            self._match(pycolmap, db, root, pairs)
            timing["match_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            rec, attempts = self._map_with_fallback(pycolmap, db, image_dir, root / "sparse", K, len(frames))
            timing["map_s"] = time.perf_counter() - t0
        finally:
            pycolmap.logging.minloglevel = previous_level
        return self._to_estimate(pycolmap, rec, attempts, len(frames), K, len(pairs), timing)

    def _matching_for(self, num_frames: int) -> str:
        small = self.matching == "sequential" and num_frames <= self.exhaustive_up_to
        return "exhaustive" if small else self.matching

    def _write_images(self, root: Path, frames: np.ndarray) -> tuple[Path, Path]:
        image_dir = root / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(frames):
            if not cv2.imwrite(str(image_dir / _image_name(i)), np.ascontiguousarray(frame[..., ::-1])):
                raise OSError(f"could not write {image_dir / _image_name(i)}")
        db = root / "database.db"
        if db.exists():  # a reused workdir must not mix runs
            db.unlink()
        return image_dir, db

    def _extract(self, pycolmap, db: Path, image_dir: Path, frames: np.ndarray, K: np.ndarray | None) -> None:
        reader = pycolmap.ImageReaderOptions()
        if K is not None:
            reader.camera_model = "PINHOLE"
            reader.camera_params = ",".join(repr(float(x)) for x in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
        else:
            reader.camera_model = "SIMPLE_PINHOLE"  # COLMAP guesses f = 1.2 max(W, H); refined in mapping
        names = [_image_name(i) for i in range(len(frames))]
        # The images (one camera, one rig, a frame each) enter the database first, in index order: the extractor
        # then fills in their features under those ids. Left to itself, a multi-threaded extractor writes images in
        # completion order, the ids change from run to run, and the mapper's tie-breaks (hence the poses, by up to
        # 0.3 in c2w on the test clip) follow the ids.
        pycolmap.Database.open(db).close()
        pycolmap.import_images(db, image_dir, camera_mode=pycolmap.CameraMode.SINGLE, image_names=names, options=reader)
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = self.extract_threads
        extraction.use_gpu = False
        extraction.sift.max_num_features = self.max_num_features
        extraction.sift.first_octave = self.sift_first_octave
        pycolmap.extract_features(
            db,
            image_dir,
            image_names=names,
            camera_mode=pycolmap.CameraMode.SINGLE,
            reader_options=reader,
            extraction_options=extraction,
            device=pycolmap.Device.cpu,
        )

    def _match(self, pycolmap, db: Path, root: Path, pairs: list[tuple[int, int]]) -> None:
        pair_file = root / "pairs.txt"
        pair_file.write_text("".join(f"{_image_name(i)} {_image_name(j)}\n" for i, j in pairs))
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = self.num_threads
        matching.use_gpu = False
        pairing = pycolmap.ImportedPairingOptions()
        pairing.match_list_path = str(pair_file)
        verification = pycolmap.TwoViewGeometryOptions()
        verification.ransac.random_seed = self.seed  # default -1 seeds from the clock; reseeded for every pair
        verification.ransac.min_num_trials = self.ransac_min_num_trials
        # Matching (the descriptors' nearest neighbours) stays on num_threads = 1: with two matcher threads the
        # matches themselves differed in 3 of 30 repeats (the threads share each image's descriptor index).
        # Verification (three LO-RANSACs per pair, most of this step) is deterministic per pair, so it runs on
        # verify_threads afterwards: the same geometries as one thread, in 25 of 25 repeats
        matching.skip_geometric_verification = self.verify_threads > 0
        pycolmap.match_image_pairs(
            db,
            matching_options=matching,
            pairing_options=pairing,
            verification_options=verification,
            device=pycolmap.Device.cpu,
        )
        if self.verify_threads > 0:
            verifier = pycolmap.GeometricVerifierOptions()
            verifier.num_threads = self.verify_threads
            pycolmap.geometric_verification(db, verifier_options=verifier, two_view_geometry_options=verification)

    def _map_global(self, pycolmap, db: Path, image_dir: Path, out: Path, K) -> tuple:
        """GLOMAP's global SfM (rotation averaging, global positioning, one bundle adjustment), single-threaded and
        seeded; intrinsics stay as the database holds them (the request's K when given)."""
        out.mkdir(parents=True, exist_ok=True)
        opts = pycolmap.GlobalPipelineOptions()
        opts.num_threads = 1
        opts.random_seed = self.seed
        opts.mapper.num_threads = 1
        opts.mapper.random_seed = self.seed
        ba = opts.mapper.bundle_adjustment
        ba.refine_focal_length = K is None  # the request's K is exact on synthroom: keep it, as the incremental path does
        ba.refine_extra_params = False
        opts.mapper.ba_num_iterations = self.global_ba_iterations
        opts.mapper.ba_skip_fixed_rotation_stage = not self.ba_fixed_rotation_stage
        if self.tracks_per_view > 0:
            opts.mapper.track_required_tracks_per_view = self.tracks_per_view
        # colours are read from the images after mapping: an empty folder skips that (a warning per image, hidden)
        colour_dir = image_dir if self.extract_colors else out / "no_images"
        colour_dir.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        recs = pycolmap.global_mapping(db, colour_dir, out, options=opts)
        rec = recs[min(recs, key=lambda i: (-recs[i].num_reg_images(), i))] if recs else None
        sizes = sorted((r.num_reg_images() for r in recs.values()), reverse=True)
        return rec, [{"mapper": "global", "reconstruction_sizes": sizes, "map_s": time.perf_counter() - t0, "used": True}]

    def _map_with_fallback(self, pycolmap, db: Path, image_dir: Path, out: Path, K, n: int):
        """Map with each initial triangulation angle in turn until every frame registers; keep the largest model.
        (``mapper="global"``: one GLOMAP run instead.)

        COLMAP's 16 degrees (relaxed to 8 internally) finds no initial pair on slow clips (synthroom paths
        with ~5 degrees of parallax), while starting at 4 degrees on clips where 16 works picked short-baseline
        pairs and produced bent models (R_err 0.09-0.26 rad) on 3 of 8 test clips: so the smaller angle is only
        a fallback. Ties keep the earlier attempt.
        """
        if self.mapper == "global":
            return self._map_global(pycolmap, db, image_dir, out, K)
        best, best_k, attempts = None, None, []
        for k, angle in enumerate(self.init_min_tri_angle_deg):
            t0 = time.perf_counter()
            recs = self._map(pycolmap, db, image_dir, out / f"attempt{k}", K, angle)
            # largest model; ties go to the lowest model index so the choice is deterministic
            rec = recs[min(recs, key=lambda i: (-recs[i].num_reg_images(), i))] if recs else None
            size = rec.num_reg_images() if rec is not None else 0
            attempts.append({
                "init_min_tri_angle_deg": angle,
                "reconstruction_sizes": sorted((r.num_reg_images() for r in recs.values()), reverse=True),
                "map_s": time.perf_counter() - t0,
            })  # fmt: skip
            if rec is not None and (best is None or size > best.num_reg_images()):
                best, best_k = rec, k
            if size == n:
                break
        for k, attempt in enumerate(attempts):
            attempt["used"] = k == best_k
        return best, attempts

    def _map(self, pycolmap, db: Path, image_dir: Path, out: Path, K, init_min_tri_angle_deg: float) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        opts = pycolmap.IncrementalPipelineOptions()
        # One thread: Ceres' multi-threaded bundle adjustment (used above 50k residuals, i.e. on 64-frame
        # clips) sums in a varying order and the poses differ by ~1e-15 between runs.
        opts.num_threads = 1
        opts.random_seed = self.seed
        opts.mapper.num_threads = 1
        opts.mapper.random_seed = self.seed
        opts.triangulation.random_seed = self.seed
        opts.ba_refine_principal_point = False
        opts.ba_refine_extra_params = False
        opts.ba_refine_focal_length = K is None
        opts.mapper.abs_pose_refine_focal_length = K is None
        opts.mapper.abs_pose_refine_extra_params = False
        opts.mapper.init_min_tri_angle = init_min_tri_angle_deg
        opts.mapper.init_max_forward_motion = self.init_max_forward_motion
        return pycolmap.incremental_mapping(db, image_dir, out, options=opts)

    def _to_estimate(self, pycolmap, rec, attempts: list, n: int, K, num_pairs: int, timing: dict) -> PoseEstimate:
        c2w, K_out = nan_poses(n)
        registered = np.zeros(n, dtype=bool)
        confidence = np.zeros(n)
        info: dict[str, Any] = {
            "version": self.version,
            "pycolmap": pycolmap.__version__,
            "options": self.options(),
            "K_fixed": K is not None,
            "num_pairs": num_pairs,
            "mapping_attempts": attempts,
            "timing": {**timing, "total_s": sum(timing.values())},
        }
        if rec is not None:
            for image in rec.images.values():
                if not image.has_pose:
                    continue
                i = int(Path(image.name).stem)
                pose = image.cam_from_world()
                w2c = np.eye(4)
                w2c[:3, :3] = pose.rotation.matrix()
                w2c[:3, 3] = pose.translation
                c2w[i] = invert_rigid(w2c)
                K_out[i] = np.asarray(rec.cameras[image.camera_id].calibration_matrix(), dtype=np.float64)
                registered[i] = True
                confidence[i] = image.num_points3D
            info["num_points3D"] = rec.num_points3D()
            info["mean_reprojection_error_px"] = float(rec.compute_mean_reprojection_error())
        return PoseEstimate(c2w, K_out, registered, confidence, self.name, info)
