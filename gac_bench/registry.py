"""Method registry: decorator, entry points (group ``gac_bench.methods``) and ``package.module:Class`` specs.

Entry points are read lazily: ``gac-bench methods`` lists them without importing every plugin's heavy
dependencies until a method is asked for.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from gac_bench.api import Method

ENTRY_POINT_GROUP = "gac_bench.methods"

_REGISTRY: dict[str, type[Method]] = {}


class UnknownMethodError(KeyError):
    """No method has this name. The message lists the closest known names."""

    def __str__(self) -> str:  # KeyError quotes its message; print it plainly
        return str(self.args[0])


class DuplicateMethodError(ValueError):
    """Two different classes claim the same method name."""


def register_method(name: str):
    """Class decorator: ``@register_method("my-method")`` makes the class available as ``--method my-method``."""

    def wrap(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({name!r}) must decorate a subclass of gac_bench.Method, got {cls!r}")
        existing = _REGISTRY.get(name)
        if existing is not None and _qualname(existing) != _qualname(cls):
            raise DuplicateMethodError(
                f"method name {name!r} is registered twice: {_qualname(existing)} and {_qualname(cls)}"
            )
        if not getattr(cls, "name", ""):
            cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _qualname(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _entry_points() -> dict[str, str]:
    """name -> 'module:Class' of installed entry points; two different targets for one name is an error."""
    found: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found and found[ep.name] != ep.value:
            raise DuplicateMethodError(
                f"method name {ep.name!r} is declared by two entry points: {found[ep.name]} and {ep.value}"
            )
        found[ep.name] = ep.value
    return found


def known_names() -> list[str]:
    """Every name that resolves: decorator registrations and entry points."""
    return sorted(set(_REGISTRY) | set(_entry_points()))


def load_class(spec: str) -> type[Method]:
    """Import ``package.module:Class`` and check it is a Method."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"method spec {spec!r}: expected package.module:Class")
    if os.getcwd() not in sys.path:  # console scripts do not put the working directory on the path
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownMethodError(f"method spec {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise UnknownMethodError(f"method spec {spec!r}: module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise TypeError(f"method spec {spec!r}: {attr} is not a subclass of gac_bench.Method")
    return cls


def get_method_class(name: str) -> type[Method]:
    """Resolve a registered name, an entry-point name or a ``package.module:Class`` spec."""
    if ":" in name:
        cls = load_class(name)
        if not getattr(cls, "name", ""):
            cls.name = cls.__name__
        return cls
    eps = _entry_points()
    if name in eps:
        cls = load_class(eps[name])
        registered = _REGISTRY.get(name)
        if registered is not None and _qualname(registered) != _qualname(cls):
            raise DuplicateMethodError(
                f"method name {name!r} is registered by {_qualname(registered)} and declared by entry point {eps[name]}"
            )
        _REGISTRY.setdefault(name, cls)
        if not cls.name:
            cls.name = name
        return cls
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, known_names(), n=3, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownMethodError(
        f"unknown method {name!r}.{hint} Known methods: {', '.join(known_names())}. "
        "A method of your own can be given as package.module:Class."
    )


@dataclass(frozen=True)
class MethodInfo:
    name: str
    summary: str
    available: bool
    detail: str  # "ready", or what is missing


def describe_methods() -> list[MethodInfo]:
    """One row per known method for ``gac-bench methods``; a plugin that fails to import is shown, not hidden."""
    rows = []
    for name in known_names():
        try:
            cls = get_method_class(name)
        except Exception as exc:  # a broken plugin must not hide the others
            rows.append(MethodInfo(name, "", False, f"failed to load: {exc}"))
            continue
        missing = cls.check_available()
        rows.append(MethodInfo(name, cls.summary, missing is None, missing or "ready"))
    return rows
