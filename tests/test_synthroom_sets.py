"""The GaC training and validation rooms never contain a room of the evaluation split (or of each other)."""

from __future__ import annotations

import pytest

from gac_bench.datasets import synthroom
from gac_bench.datasets.synthroom import writer
from gac_bench.splits import get_split


@pytest.fixture(scope="module")
def fingerprints():
    return {name: writer.set_fingerprints(rs.config) for name, rs in synthroom.ROOM_SETS.items()}


def test_sets_have_the_promised_sizes_and_distinct_ids():
    sets = synthroom.ROOM_SETS
    assert sets["synthroom-train"].num_clips >= 200 and sets["synthroom-val"].num_clips >= 32
    ids = [cid for rs in sets.values() for cid in rs.config.clip_ids]
    assert len(ids) == len(set(ids))
    assert synthroom.ROOM_SETS["synthroom"].config.clip_ids == synthroom.CLIP_IDS
    assert len({rs.seed for rs in sets.values()}) == len(sets)


def test_no_scene_of_one_set_equals_a_scene_of_another(fingerprints):
    seen: dict[str, str] = {}
    for name, prints in fingerprints.items():
        assert len(set(prints.values())) == len(prints), f"{name} repeats a room"
        for cid, fp in prints.items():
            assert fp not in seen, f"{name}/{cid} is the same scene as {seen[fp]}"
            seen[fp] = f"{name}/{cid}"


def test_fingerprint_tells_scenes_apart_and_is_stable():
    a = synthroom.make_scene(writer.clip_seed(0, 0))
    again = synthroom.make_scene(writer.clip_seed(0, 0), name="renamed")
    other = synthroom.make_scene(writer.clip_seed(0, 1))
    assert writer.scene_fingerprint(a) == writer.scene_fingerprint(again)
    assert writer.scene_fingerprint(a) != writer.scene_fingerprint(other)


def test_room_sets_are_splits_with_their_own_cache():
    train, val, ev = (get_split(n) for n in ("synthroom-train", "synthroom-val", "synthroom"))
    assert [c.clip_id for c in train.clips][:2] == ["train000", "train001"]
    assert [c.clip_id for c in val.clips][-1] == "val31"
    assert len({train.data_location, val.data_location, ev.data_location}) == 3
    assert "never trained on" in ev.description and "never scored" in train.description


def test_default_split_manifest_is_unchanged_by_the_prefix_field():
    core = synthroom.DEFAULT_CONFIG.manifest_core(synthroom.VERSION)
    assert "prefix" not in core and core["clip_ids"][0] == "room00"
    val_core = synthroom.ROOM_SETS["synthroom-val"].config.manifest_core(synthroom.VERSION)
    assert val_core["prefix"] == "val"
