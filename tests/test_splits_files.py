"""Committed split files: validation on load, and re-derivation from their documented rules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from gac_bench.paths import repo_root
from gac_bench.split_files import SplitFileError, load_split_file, parse_split_text
from gac_bench.splits import get_split, known_splits
from gac_bench.trajectories import source_frames_needed

SHARED_DATA = repo_root().parent / "shared" / "data"


def make_splits_module():
    spec = importlib.util.spec_from_file_location("make_splits", repo_root() / "tools" / "make_splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_load_and_register():
    assert {"re10k-test-150", "tanks-150"} <= set(known_splits())
    for name in ("re10k-test-150", "tanks-150"):
        sf = load_split_file(name)
        assert len(sf) == 150 and sf.header["salt"] and "made-by" in sf.header
        split = get_split(name, None)
        assert (split.width, split.height) == (640, 352) and len(split.clips) == 150


def test_re10k_file_fits_its_clips():
    sf = load_split_file("re10k-test-150")
    assert all(c.stride == 3 and c.length is not None for c in sf.clips)
    assert all(source_frames_needed(c.start, c.stride) <= c.length for c in sf.clips)


def test_tanks_file_has_several_segments_per_scene():
    sf = load_split_file("tanks-150")
    per_scene: dict[str, list[int]] = {}
    for c in sf.clips:
        per_scene.setdefault(c.scene, []).append(c.start)
    assert len(per_scene) == 21 and all(7 <= len(v) <= 8 for v in per_scene.values())
    assert max(source_frames_needed(c.start, c.stride) for c in sf.clips) == 150


def test_re10k_split_rederives_from_the_depthsplat_list():
    ms = make_splits_module()
    if not (SHARED_DATA / ms.DEPTHSPLAT_LIST).is_file():
        pytest.skip(f"{SHARED_DATA / ms.DEPTHSPLAT_LIST} not present (shared data is beside the checkout in CI)")
    text = ms.re10k_text(ms.read_depthsplat_lengths(SHARED_DATA / ms.DEPTHSPLAT_LIST))
    assert text == (repo_root() / "splits" / "re10k-test-150.csv").read_text(encoding="utf-8")


def test_re10k_rule_by_hand_on_a_toy_population():
    """The documented rule, written out independently: rank by sha256(salt|rank|id), start by sha256(salt|start|id)."""
    import hashlib

    ms = make_splits_module()
    lengths = {f"{i:016x}": 185 + i % 100 for i in range(400)}
    clips = ms.derive_re10k_test_150(lengths)

    def h(label, v):
        return hashlib.sha256(f"gac-bench:re10k-test-150:v1|{label}|{v}".encode()).hexdigest()

    eligible = sorted((cid for cid, n in lengths.items() if n >= 190), key=lambda cid: h("rank", cid))
    assert [c.clip_id for c in clips] == eligible[:150]
    assert all(c.start == int(h("start", c.clip_id), 16) % (lengths[c.clip_id] - 189) for c in clips)


def test_tanks_split_rederives_and_matches_the_scene_list():
    ms = make_splits_module()
    if (SHARED_DATA / ms.TANKS_SCENES_CSV).is_file():
        ms.check_tanks_scenes(SHARED_DATA / ms.TANKS_SCENES_CSV)
    assert ms.tanks_text() == (repo_root() / "splits" / "tanks-150.csv").read_text(encoding="utf-8")
    assert ms.tanks_starts(7) == [0, 14, 29, 43, 57, 72, 86]


# ---------------------------------------------------------------------------------------------- validation

GOOD = """# gac-bench split file, format 1
# name: re10k-test-150
# clips: 2
#
#   free comment: ignored
clip_id,start,stride,length
0123456789abcdef,0,3,200
fedcba9876543210,5,3,279
"""


def parse(text: str, name: str = "re10k-test-150"):
    return parse_split_text(text, name, Path(f"/x/{name}.csv"))


def test_a_good_file_parses():
    sf = parse(GOOD)
    assert [c.clip_id for c in sf.clips] == ["0123456789abcdef", "fedcba9876543210"]
    assert sf.header == {"name": "re10k-test-150", "clips": "2"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (("0123456789abcdef,0", "0123456789ABCDEF,0"), "does not match"),
        (("0123456789abcdef,0", "../456789abcdef,0"), "path characters"),
        (("0123456789abcdef,0", "01234567/9abcdef,0"), "path characters"),
        (("fedcba9876543210,5", "0123456789abcdef,5"), "already listed on line 7"),
        (("fedcba9876543210,5,3,279", "fedcba9876543210,5,3,190"), "needs 195"),
        (("fedcba9876543210,5,3", "fedcba9876543210,-5,3"), "non-negative integer"),
        (("fedcba9876543210,5,3", "fedcba9876543210,5,0"), "stride must be at least 1"),
        (("# clips: 2", "# clips: 3"), "header says 3 clips"),
        (("# name: re10k-test-150", "# name: other"), "expected 're10k-test-150'"),
        (("clip_id,start,stride,length", "clip_id,start,length"), "bad column line"),
        (("# gac-bench split file, format 1\n", ""), "format 1"),
    ],
)
def test_bad_files_are_refused_with_file_and_line(edit, message):
    old, new = edit
    assert old in GOOD
    with pytest.raises(SplitFileError, match=message) as err:
        parse(GOOD.replace(old, new, 1))
    assert "/x/re10k-test-150.csv" in str(err.value)


def test_tanks_ids_must_match_scene_and_start():
    text = "# gac-bench split file, format 1\n# name: tanks-150\nclip_id,scene,start,stride\nBarn-0014,Barn,14,1\n"
    assert parse(text, "tanks-150").clips[0].scene == "Barn"
    with pytest.raises(SplitFileError, match="must be 'Barn-0015'"):
        parse(text.replace(",14,", ",15,"), "tanks-150")
