"""gac-bench: a benchmark harness for camera-controlled scene video generation."""

from gac_bench.api import GenerationRequest, Method, MethodUnavailable, UnsupportedRequest
from gac_bench.registry import get_method_class, register_method

__version__ = "0.1.0"

__all__ = [
    "GenerationRequest",
    "Method",
    "MethodUnavailable",
    "UnsupportedRequest",
    "__version__",
    "get_method_class",
    "register_method",
]
