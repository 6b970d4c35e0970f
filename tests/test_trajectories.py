import numpy as np
import pytest

from gac_bench.trajectories import make_trajectory, source_frames_needed


def test_dataset_trajectory_uses_start_and_stride():
    traj = make_trajectory("dataset", start=10, stride=3)
    assert traj.num_frames == 64
    np.testing.assert_array_equal(traj.source_index, 10 + 3 * np.arange(64))


def test_forth_and_back_mirrors_forward_frames():
    traj = make_trajectory("forth-and-back", start=5, stride=3)
    src = traj.source_index
    np.testing.assert_array_equal(src[:32], 5 + 3 * np.arange(32))
    assert src[63] == src[0]  # frame 63 returns exactly to frame 0's pose and ground truth
    assert src[32] == src[31]  # frame 32 mirrors frame 31
    for k in range(32):
        assert src[32 + k] == src[31 - k]
        assert traj.mirror_of[32 + k] == 31 - k


def test_unknown_trajectory_and_needed_length():
    with pytest.raises(ValueError, match="unknown trajectory"):
        make_trajectory("circle", 0, 1)
    assert source_frames_needed(0, 3) == 190
