"""Tanks-and-Temples as users reconstruct it: per scene an images folder plus a COLMAP model.

Layout under a data root (scene folder names match case-insensitively, so the 3DGS ``tandt/truck`` works)::

    <root>/<Scene>/images/*.jpg|png                    the scene's image list
    <root>/<Scene>/sparse/0/{cameras,images}.{bin,txt}  or sparse/, colmap/sparse/0/, or the scene folder itself

The scene folder may also sit one level down (``<root>/tandt/truck``, ``<root>/intermediate/Train``).

Image list and frame indices: the image files directly in ``images/`` (suffix .jpg/.jpeg/.png, any case;
names starting with "." ignored), sorted by name in *natural order* -- runs of digits compare as numbers,
the rest by code point, ties broken by the plain name. For the zero-padded names of the official image
sets this is plain name order, i.e. capture order. Source frame ``i`` of a scene is the i-th image of that
list, so a split entry (scene, start, stride) selects the same images on every machine.

Poses come from the COLMAP model (world-to-camera, inverted to ``c2w``); intrinsics from the model camera,
scaled to the actual image size (the 3DGS copy ships half-size images with full-size cameras). Every image of
the evaluated segment must be in the model; images outside the segment that the model lacks get NaN poses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gac_bench import cameras
from gac_bench.datasets.clip import Clip, ClipDataError
from gac_bench.datasets.colmap_model import ColmapModelError, find_model_files, read_model
from gac_bench.datasets.re10k import IMAGE_SUFFIXES, load_image, resize_crop_image

# The 21 scenes (isl-org/TanksAndTemples toolbox), in the order of shared/data/tanks_and_temples_scenes.csv.
SCENES: dict[str, str] = {
    "Barn": "training",
    "Caterpillar": "training",
    "Church": "training",
    "Courthouse": "training",
    "Ignatius": "training",
    "Meetingroom": "training",
    "Truck": "training",
    "Family": "intermediate",
    "Francis": "intermediate",
    "Horse": "intermediate",
    "Lighthouse": "intermediate",
    "M60": "intermediate",
    "Panther": "intermediate",
    "Playground": "intermediate",
    "Train": "intermediate",
    "Auditorium": "advanced",
    "Ballroom": "advanced",
    "Courtroom": "advanced",
    "Museum": "advanced",
    "Palace": "advanced",
    "Temple": "advanced",
}
MODEL_SUBDIRS = ("sparse/0", "sparse", "colmap/sparse/0", "colmap", ".")
INTRINSICS_TOLERANCE = 0.02  # relative; a segment whose cameras differ more from the reference's fails


def natural_key(name: str) -> tuple:
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), name


def list_images(images_dir: Path) -> list[Path]:
    """The scene's image list in natural name order (see the module docstring)."""
    files = [
        p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


@dataclass(frozen=True)
class TanksScene:
    name: str
    scene_dir: Path
    images_dir: Path
    model_dir: Path | None  # None when no model was found (reported when a clip is loaded)


def _scene_dirs(root: Path, scene: str) -> list[Path]:
    """Folders named like the scene (any case), directly under ``root`` or one level down."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for level in (root, *sorted(p for p in root.iterdir() if p.is_dir())):
        found += [c for c in sorted(level.iterdir()) if c.name.lower() == scene.lower() and c.is_dir()]
        if found:
            break
    return found


def find_scene(root: Path, scene: str) -> TanksScene | None:
    """The scene's folder under ``root`` (one with an ``images`` folder), or None."""
    for scene_dir in _scene_dirs(root, scene):
        images_dir = scene_dir / "images"
        if images_dir.is_dir():
            model_dir = next((scene_dir / s for s in MODEL_SUBDIRS if find_model_files(scene_dir / s)), None)
            return TanksScene(scene, scene_dir, images_dir, model_dir.resolve() if model_dir else None)
    return None


@dataclass
class TanksReader:
    """Reads segments of scenes under ``root`` at ``width`` x ``height`` (resize to cover, centre crop).

    The last model read stays cached: split files list a scene's segments together, and a real ``images.bin``
    (with its 2-D points) can be tens of megabytes.
    """

    root: Path
    width: int
    height: int
    _cached_model: tuple[Path, object] | None = field(default=None, repr=False)

    def _model(self, model_dir: Path):
        if self._cached_model is None or self._cached_model[0] != model_dir:
            self._cached_model = (model_dir, read_model(model_dir))
        return self._cached_model[1]

    def load_clip(self, clip_id: str, scene: str, segment: np.ndarray) -> Clip:
        """Clip over the scene's whole image list; ``segment`` (source indices) must have registered images."""
        found = find_scene(self.root, scene)
        if found is None:
            raise ClipDataError(
                f"clip {clip_id}: scene {scene} not found under {self.root} (expected {self.root}/{scene}/images "
                "and a COLMAP model in sparse/0)"
            )
        if found.model_dir is None:
            raise ClipDataError(
                f"clip {clip_id}: no COLMAP model for scene {scene} in {found.scene_dir} "
                f"(looked in {', '.join(MODEL_SUBDIRS)} for cameras/images .bin or .txt)"
            )
        try:
            model = self._model(found.model_dir)
        except ColmapModelError as exc:
            raise ClipDataError(f"clip {clip_id}: {exc}") from None
        paths = list_images(found.images_dir)
        last = int(np.max(segment))
        if last >= len(paths):
            raise ClipDataError(
                f"clip {clip_id}: {found.images_dir} has {len(paths)} images, the segment needs source frame {last} "
                f"(at least {last + 1} images)"
            )
        return self._build_clip(clip_id, found, model, paths, segment)

    def _build_clip(self, clip_id, found: TanksScene, model, paths: list[Path], segment: np.ndarray) -> Clip:
        by_name = model.images_by_name()
        by_base: dict[str, list] = {}
        for im in model.images.values():
            by_base.setdefault(Path(im.name).name, []).append(im)

        def model_image(path: Path):
            rel = path.relative_to(found.images_dir).as_posix()
            if rel in by_name:
                return by_name[rel]
            candidates = by_base.get(path.name, [])
            return candidates[0] if len(candidates) == 1 else None

        entries = [model_image(p) for p in paths]
        for i in sorted(set(int(s) for s in segment)):
            if entries[i] is None:
                raise ClipDataError(
                    f"clip {clip_id}: image {paths[i]} (source frame {i}) has no pose in the COLMAP model "
                    f"{found.model_dir} ({model.format})"
                )
        c2w = np.full((len(paths), 4, 4), np.nan)
        for i, im in enumerate(entries):
            if im is not None:
                c2w[i] = im.c2w
        ref = int(segment[0])
        ref_img = load_image(paths[ref], clip_id)
        src_wh = (ref_img.shape[1], ref_img.shape[0])
        K_src = self._intrinsics(clip_id, model, entries, paths, segment, src_wh)
        dst_wh = (self.width, self.height)
        K = cameras.K_after_resize_crop(K_src, src_wh, dst_wh)

        def frame(i: int) -> np.ndarray:
            img = load_image(paths[i], clip_id)
            if (img.shape[1], img.shape[0]) != src_wh:
                raise ClipDataError(
                    f"clip {clip_id}: {paths[i]} is {img.shape[1]}x{img.shape[0]}, the reference image "
                    f"{paths[ref].name} is {src_wh[0]}x{src_wh[1]}"
                )
            return resize_crop_image(img, dst_wh)

        return Clip(
            clip_id=clip_id,
            K=K,
            c2w=c2w,
            height=self.height,
            width=self.width,
            source=str(found.model_dir),
            layout=f"tanks-colmap ({model.format} model {found.model_dir}, images {found.images_dir})",
            _frame_loader=frame,
            frame_paths=paths,
        )

    def _intrinsics(self, clip_id, model, entries, paths, segment, src_wh) -> np.ndarray:
        """Pixel K of the reference image at its actual size; the segment's cameras must agree with it."""
        Ks = []
        for i in sorted(set(int(s) for s in segment)):
            cam = model.cameras[entries[i].camera_id]
            try:
                K_cam = cam.K()
            except ColmapModelError as exc:
                raise ClipDataError(f"clip {clip_id}: {model.path}: {exc}") from None
            cam_aspect, img_aspect = cam.width / cam.height, src_wh[0] / src_wh[1]
            if abs(cam_aspect / img_aspect - 1) > 0.01:
                raise ClipDataError(
                    f"clip {clip_id}: {paths[i]} is {src_wh[0]}x{src_wh[1]} but its COLMAP camera {cam.camera_id} "
                    f"is {cam.width}x{cam.height} ({model.path})"
                )
            Ks.append(cameras.K_after_resize(K_cam, (cam.width, cam.height), src_wh))
        focal = np.array([[k[0, 0], k[1, 1]] for k in Ks])
        spread = np.max(np.abs(focal / focal[0] - 1))
        if spread > INTRINSICS_TOLERANCE:
            raise ClipDataError(
                f"clip {clip_id}: focal lengths along the segment differ by {spread:.1%} "
                f"(> {INTRINSICS_TOLERANCE:.0%}) in {model.path}; the protocol gives methods one K per clip"
            )
        return Ks[0]  # segment[0] = start, the reference frame, is the segment's smallest index
