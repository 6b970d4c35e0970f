from importlib.metadata import EntryPoint

import numpy as np
import pytest

from gac_bench import registry
from gac_bench.api import Method, parse_option_pairs, parse_options


def test_builtin_methods_resolve_through_entry_points():
    assert registry.get_method_class("identity").name == "identity"
    assert registry.get_method_class("depth-warp").uses_dataset_depth


def test_unknown_name_lists_closest_names():
    with pytest.raises(registry.UnknownMethodError, match="Did you mean: depth-warp"):
        registry.get_method_class("depth_warp")


def test_module_class_spec_and_bad_specs():
    cls = registry.get_method_class("tests.methods_for_tests:SlowIdentity")
    assert cls.name == "slow-identity"
    with pytest.raises(registry.UnknownMethodError, match="no attribute"):
        registry.get_method_class("tests.methods_for_tests:Nope")
    with pytest.raises(TypeError, match="not a subclass"):
        registry.get_method_class("numpy:ndarray")


def test_duplicate_names_fail(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register_method("dup-test")
    class A(Method):
        pass

    with pytest.raises(registry.DuplicateMethodError, match="registered twice"):

        @registry.register_method("dup-test")
        class B(Method):
            pass


def test_duplicate_entry_points_fail(monkeypatch):
    eps = [EntryPoint("x", "a.b:C", registry.ENTRY_POINT_GROUP), EntryPoint("x", "d.e:F", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    with pytest.raises(registry.DuplicateMethodError, match="two entry points"):
        registry.known_names()


def test_entry_point_discovery_is_lazy_and_listed(monkeypatch):
    eps = [EntryPoint("fake-slow", "tests.methods_for_tests:SlowIdentity", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    assert registry.known_names() == sorted(set(registry._REGISTRY) | {"fake-slow"})
    rows = {m.name: m for m in registry.describe_methods()}
    assert rows["fake-slow"].available and rows["fake-slow"].detail == "ready"


def test_describe_reports_missing_dependencies():
    class NeedsPkg(Method):
        requires = ("surely_not_installed_pkg",)

    assert "surely_not_installed_pkg" in NeedsPkg.check_available()


def test_options_are_typed_and_unknown_keys_fail():
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        steps: int = 50
        dry_run: bool = False

    cfg = parse_options(Cfg, parse_option_pairs(["steps=10", "dry_run=False"]))
    assert cfg.steps == 10 and cfg.dry_run is False  # "False" must not turn into True
    with pytest.raises(ValueError, match="unknown option"):
        parse_options(Cfg, {"stepz": "1"})
    with pytest.raises(ValueError, match="expected int"):
        parse_options(Cfg, {"steps": "ten"})
    with pytest.raises(ValueError, match="key=value"):
        parse_option_pairs(["steps"])


def test_identity_returns_reference_everywhere():
    from baselines.identity import IdentityMethod
    from gac_bench.api import GenerationRequest

    ref = np.random.default_rng(0).integers(0, 255, (8, 12, 3), dtype=np.uint8)
    req = GenerationRequest("c", ref, np.eye(3), np.tile(np.eye(4), (5, 1, 1)), 8, 12, 0, "dataset", None)
    out = IdentityMethod().generate(req)
    assert out.shape == (5, 8, 12, 3) and (out == ref).all()


def test_user_module_in_the_working_directory_resolves(tmp_path, monkeypatch):
    """`gac-bench run --method my_method:Mirror` from the folder holding my_method.py (the README example)."""
    (tmp_path / "my_mirror_method.py").write_text(
        "import numpy as np\n"
        "from gac_bench import Method\n"
        "class Mirror(Method):\n"
        "    def generate(self, request):\n"
        "        return np.repeat(request.reference_image[None, :, ::-1], request.num_frames, axis=0)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert registry.get_method_class("my_mirror_method:Mirror").name == "Mirror"
