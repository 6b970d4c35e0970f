"""SEVA (Stable Virtual Camera) camera conversion, pure functions.

Native conventions:

=================  =====================================================================================
in-memory API      camera-to-world, OpenCV axes (``camera_cond["c2w"]``); pixel K at the working size
scene folder       ``transforms.json`` (demo.py ``img2trajvid``, ``ReconfusionParser``): per frame
                   ``transform_matrix`` = camera-to-world in OpenGL axes (x right, y up, z backward),
                   ``fl_x, fl_y, cx, cy, w, h`` in pixels; the parser negates the y and z columns to get
                   OpenCV; ``train_test_split_1.json`` lists input (train) and target (test) ids
world              any (SEVA re-centres); we use frame 0's camera as the world for readability
translation scale  SEVA normalises translations itself (``camera_scale`` / distance of camera 0 from the
                   mean camera centre), so the harness magnitude does not reach the model
=================  =====================================================================================
"""

from __future__ import annotations

import numpy as np

from gac_bench import cameras

NATIVE_WH = (1024, 576)  # demo.py --L_short 576 for a 16:9 image: short side 576, long side a multiple of 64


def seva_cameras(c2w_opencv: np.ndarray) -> np.ndarray:
    """Harness c2w (N,4,4) -> OpenCV c2w relative to frame 0 (SEVA's in-memory form)."""
    return cameras.relative_to_first(c2w_opencv)


def transforms_json(
    c2w_opencv_rel: np.ndarray, K_native: np.ndarray, native_wh: tuple[int, int], image_name: str
) -> dict:
    """The ``transforms.json`` of a SEVA scene folder: frame 0 has the image, the targets have none."""
    c2w_gl = cameras.opencv_to_opengl(c2w_opencv_rel)
    w, h = native_wh
    frames = []
    for i, T in enumerate(c2w_gl):
        frames.append({
            "file_path": image_name if i == 0 else None,  # ReconfusionParser accepts null paths for targets
            "transform_matrix": T.tolist(),
            "fl_x": float(K_native[0, 0]), "fl_y": float(K_native[1, 1]),
            "cx": float(K_native[0, 2]), "cy": float(K_native[1, 2]),
            "w": int(w), "h": int(h),
        })
    return {"frames": frames}


def split_json(num_frames: int) -> dict:
    """``train_test_split_1.json``: frame 0 is the single input, every other frame a target."""
    return {"train_ids": [0], "test_ids": list(range(1, num_frames))}


def parse_transforms(metadata: dict) -> tuple[np.ndarray, np.ndarray]:
    """Read ``transforms.json`` by ReconfusionParser's rules: (OpenCV c2w (N,4,4), pixel K (N,3,3))."""
    c2w = np.array([f["transform_matrix"] for f in metadata["frames"]], dtype=np.float64)
    c2w[:, :, [1, 2]] *= -1  # OpenGL -> OpenCV, exactly as the parser does
    Ks = np.array([cameras.intrinsics_matrix(f["fl_x"], f["fl_y"], f["cx"], f["cy"]) for f in metadata["frames"]])
    return c2w, Ks


def seva_normalised_translations(c2w_opencv: np.ndarray, camera_scale: float) -> np.ndarray:
    """Camera centres after SEVA's normalisation in ``get_value_dict``: centred on their mean, scaled so that
    camera 0 lies ``camera_scale`` from it (outlier rejection omitted). Shows the harness scale cancels."""
    centres = np.asarray(c2w_opencv)[:, :3, 3]
    centred = centres - centres.mean(axis=0)
    d0 = np.linalg.norm(centred[0])
    return centred * (camera_scale / d0 if d0 > 1e-8 else camera_scale)
