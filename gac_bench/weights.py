"""Every weight file a metric or method needs: name, expected path, size, sha256, source. Nothing downloads.

A metric whose file is missing is reported as missing (with :meth:`WeightFile.fix_hint`), never computed with
random weights. Locations follow the ecosystem's own caches (``TORCH_HOME``, the Hugging Face cache) plus
``GAC_BENCH_HOME/weights``; every entry can be pointed elsewhere with its environment variable.

Sizes and digests are recorded only where they are known for certain. Torch hub file names carry the first 8 hex
digits of the file's sha256 (``alexnet-owt-7be5be79.pth``; torchvision checks it on download), so those
entries carry a ``sha256_prefix``. Methods declare their own files with :func:`register_weight_file`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gac_bench.paths import gac_bench_home, torch_home


class WeightsMissing(RuntimeError):
    """A weight file a metric or method needs is absent. The message is one line: file, expected path, fix."""

    def __init__(self, weight: "WeightFile", detail: str | None = None):
        self.weight = weight
        super().__init__(detail or weight.fix_hint())


@dataclass(frozen=True)
class WeightFile:
    """One file (or one folder of files, when ``required_files`` is set) that a metric or method loads."""

    name: str
    used_by: str
    path_fn: Callable[[], Path]
    url: str
    size_bytes: int | None = None
    sha256: str | None = None  # full digest where known
    sha256_prefix: str | None = None  # torch hub names carry the first 8 hex digits of the sha256
    required_files: tuple[str, ...] = ()  # non-empty: ``path`` is a folder that must hold all of these
    env_var: str | None = None  # the variable that overrides the location (``path_fn`` reads it)
    fetch: str | None = None  # command that fetches it on a machine with network ({path} is filled in); default: curl
    note: str = ""

    @property
    def path(self) -> Path:
        return self.path_fn()

    @property
    def is_folder(self) -> bool:
        return bool(self.required_files)

    def missing_parts(self) -> list[str]:
        """Required files absent from the folder (folders), or ``[name]`` when the file is absent."""
        path = self.path
        if self.is_folder:
            return [f for f in self.required_files if not (path / f).is_file()]
        return [] if path.is_file() else [self.name]

    def present(self) -> bool:
        return not self.missing_parts()

    def fix_hint(self) -> str:
        where = f"{self.path}" + (f" (missing: {', '.join(self.missing_parts())})" if self.is_folder else "")
        fetch = (self.fetch or "mkdir -p {parent} && curl -L -o {path} {url}").format(
            path=self.path, parent=self.path.parent, url=self.url
        )
        override = f"set {self.env_var}" if self.env_var else "point GAC_BENCH_HOME at a folder that has it"
        return (
            f"{self.name} not found at {where}; on a machine with internet run `{fetch}` and copy it here "
            f"(or {override}); source: {self.url}"
        )


# --- locations -----------------------------------------------------------------------------------------------


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache as huggingface_hub resolves it (HF_HUB_CACHE, HF_HOME/hub, XDG, ~/.cache)."""
    if "HF_HUB_CACHE" in os.environ:
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if "HF_HOME" in os.environ:
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hf_snapshot_dir(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (the one refs/main names, else the newest), or None. No network."""
    repo_dir = hf_hub_cache() / f"models--{repo_id.replace('/', '--')}"
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        snap = repo_dir / "snapshots" / ref.read_text().strip()
        if snap.is_dir():
            return snap
    snaps = sorted((repo_dir / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
    return snaps[0] if snaps else None


def _env_path(var: str) -> Path | None:
    value = os.environ.get(var)
    return Path(value).expanduser() if value else None


def _gac_weights(*parts: str) -> Path:
    return gac_bench_home() / "weights" / Path(*parts)


def _inception_path() -> Path:
    return _env_path("GAC_BENCH_INCEPTION") or _gac_weights(INCEPTION_FILE_NAME)


def _vggt_path() -> Path:
    """GAC_BENCH_VGGT (a file, or a folder holding model.safetensors / model.pt), else the HF cache snapshot."""
    override = _env_path("GAC_BENCH_VGGT")
    if override is not None and not override.is_dir():
        return override
    folder = override or hf_snapshot_dir("facebook/VGGT-1B")
    if folder is not None:
        for name in ("model.safetensors", "model.pt"):
            if (folder / name).is_file():
                return folder / name
        return folder / "model.safetensors"
    # Shown when absent: where `hf download facebook/VGGT-1B` puts it.
    return hf_hub_cache() / "models--facebook--VGGT-1B" / "snapshots" / "<revision>" / "model.safetensors"


def _folder_path(env_var: str, home_name: str, hf_repo: str | None) -> Path:
    """env var, else GAC_BENCH_HOME/weights/<home_name> if it exists, else the HF cache snapshot, else the former."""
    override = _env_path(env_var)
    if override is not None:
        return override
    home = _gac_weights(home_name)
    if home.is_dir() or hf_repo is None:
        return home
    return hf_snapshot_dir(hf_repo) or home


# --- the registry --------------------------------------------------------------------------------------------

INCEPTION_FILE_NAME = "weights-inception-2015-12-05-6726825d.pth"

LPIPS_ALEXNET = WeightFile(
    name="alexnet-owt-7be5be79.pth",
    used_by="LPIPS (AlexNet backbone, torchvision)",
    path_fn=lambda: torch_home() / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256_prefix="7be5be79",
    env_var="TORCH_HOME",
    note="about 233.1 MB (torchvision metadata; exact byte count not recorded here)",
)

FID_INCEPTION = WeightFile(
    name=INCEPTION_FILE_NAME,
    used_by="FID / KID (Inception-v3 pool3, torch-fidelity FeatureExtractorInceptionV3)",
    path_fn=_inception_path,
    url=f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE_NAME}",
    # The name follows the torch hub "<first 8 hex of sha256>" convention; torch-fidelity itself never checks it.
    sha256_prefix="6726825d",
    env_var="GAC_BENCH_INCEPTION",
)

VGGT_1B = WeightFile(
    name="VGGT-1B",
    used_by="pose metrics R_err / T_err (VGGT-1B estimator)",
    path_fn=_vggt_path,
    url="https://huggingface.co/facebook/VGGT-1B/resolve/main/model.pt",
    env_var="GAC_BENCH_VGGT",
    fetch="hf download facebook/VGGT-1B model.safetensors",  # lands in the HF cache, the expected location
    note="about 5 GB; weights licence CC-BY-NC-4.0",
)

FLUX_VAE = WeightFile(
    name="flux-vae",
    used_by="GaC (FLUX autoencoder, diffusers AutoencoderKL folder)",
    path_fn=lambda: _folder_path("GAC_BENCH_FLUX_VAE", "flux-vae", None),
    url="https://huggingface.co/black-forest-labs/FLUX.1-schnell/tree/main/vae",
    required_files=("config.json", "diffusion_pytorch_model.safetensors"),
    env_var="GAC_BENCH_FLUX_VAE",
    fetch=(
        "hf download black-forest-labs/FLUX.1-schnell --include 'vae/*' --local-dir /tmp/flux && "
        "mkdir -p {parent} && mv /tmp/flux/vae {path}"
    ),
    note="diffusers layout; Bagel's ae.safetensors is the same autoencoder in BFL key format (needs conversion)",
)

BAGEL_7B_MOT = WeightFile(
    name="BAGEL-7B-MoT",
    used_by="GaC (base model)",
    path_fn=lambda: _folder_path("GAC_BENCH_BAGEL", "BAGEL-7B-MoT", "ByteDance-Seed/BAGEL-7B-MoT"),
    url="https://huggingface.co/ByteDance-Seed/BAGEL-7B-MoT",
    required_files=(
        "ema.safetensors",
        "ae.safetensors",
        "config.json",
        "llm_config.json",
        "vit_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
    ),
    env_var="GAC_BENCH_BAGEL",
    fetch="hf download ByteDance-Seed/BAGEL-7B-MoT --local-dir {path}",
    note="about 30 GB (ema.safetensors 29.2 GB)",
)

WEIGHT_FILES: dict[str, WeightFile] = {
    w.name: w for w in (LPIPS_ALEXNET, FID_INCEPTION, VGGT_1B, FLUX_VAE, BAGEL_7B_MOT)
}


def register_weight_file(weight: WeightFile) -> WeightFile:
    """Declare a file a method needs so ``gac-bench weights`` lists it. Re-registering the same entry is a no-op."""
    known = WEIGHT_FILES.get(weight.name)
    if known is not None and known != weight:
        raise ValueError(f"a different weight file named {weight.name!r} is already registered ({known.used_by})")
    WEIGHT_FILES[weight.name] = weight
    return weight


def require(weight: WeightFile) -> Path:
    """The weight's path, or :class:`WeightsMissing` with the one-line fix. Never downloads."""
    if not weight.present():
        raise WeightsMissing(weight)
    return weight.path


# --- checking ------------------------------------------------------------------------------------------------

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path, chunk_bytes: int = 8 << 20) -> str:
    """sha256 hex digest, read in chunks; memoised per (path, size, mtime) so repeated calls are free."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(chunk_bytes):
                digest.update(block)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


@dataclass(frozen=True)
class WeightStatus:
    """What ``gac-bench weights [--check]`` reports for one entry.

    state: "present", "missing", "size-mismatch" or "hash-mismatch". ``sha256`` is the digest found on disk
    (computed only when hashes are verified, files only); ``verified`` says it was compared with a known
    digest or prefix.
    """

    weight: WeightFile
    path: Path
    state: str
    size_bytes: int | None
    sha256: str | None = None
    verified: bool = False
    detail: str = ""

    @property
    def name(self) -> str:
        return self.weight.name

    @property
    def ok(self) -> bool:
        return self.state == "present"


def _on_disk_size(weight: WeightFile, path: Path) -> int:
    if weight.is_folder:
        return sum((path / f).stat().st_size for f in weight.required_files)
    return path.stat().st_size


def weight_status(weight: WeightFile, verify_hash: bool = False) -> WeightStatus:
    path = weight.path
    if not weight.present():
        return WeightStatus(weight, path, "missing", None, detail=weight.fix_hint())
    size = _on_disk_size(weight, path)
    if weight.size_bytes is not None and size != weight.size_bytes:
        detail = f"{path} has {size} bytes, expected {weight.size_bytes}; re-fetch from {weight.url}"
        return WeightStatus(weight, path, "size-mismatch", size, detail=detail)
    if not verify_hash or weight.is_folder:
        return WeightStatus(weight, path, "present", size)
    digest = file_sha256(path)
    expected = weight.sha256 or weight.sha256_prefix
    if expected is None:
        return WeightStatus(weight, path, "present", size, digest, detail="no known sha256 to compare with")
    if not digest.startswith(expected.lower()):
        detail = f"{path} sha256 {digest[:16]}... does not match expected {expected}; re-fetch from {weight.url}"
        return WeightStatus(weight, path, "hash-mismatch", size, digest, verified=True, detail=detail)
    return WeightStatus(weight, path, "present", size, digest, verified=True)


def list_weights() -> list[WeightStatus]:
    """Every registered entry with presence and size; no hashing (fast)."""
    return [weight_status(w, verify_hash=False) for w in WEIGHT_FILES.values()]


def check_weights(verify_hash: bool = True) -> list[WeightStatus]:
    """Like :func:`list_weights`, and compares each present file's sha256 with the known digest or prefix."""
    return [weight_status(w, verify_hash=verify_hash) for w in WEIGHT_FILES.values()]


def _fmt_size(status: WeightStatus) -> str:
    if status.size_bytes is not None:
        return f"{status.size_bytes} B"
    known = status.weight.size_bytes
    return f"({known} B)" if known is not None else "-"


def _fmt_sha(status: WeightStatus) -> str:
    expected = status.weight.sha256 or status.weight.sha256_prefix
    if status.sha256:
        return status.sha256[:16] + ("" if status.verified or expected is None else f" (want {expected})")
    return f"{expected}..." if expected else "-"


def format_weights_table(statuses: list[WeightStatus]) -> str:
    """The table ``gac-bench weights [--check]`` prints, then one line per problem with the path and the fix."""
    from gac_bench.listing import format_listing

    rows = [
        (s.name, s.state, _fmt_size(s), _fmt_sha(s), str(s.path), s.weight.url, s.weight.used_by) for s in statuses
    ]
    header = ("name", "state", "size", "sha256", "expected path", "source", "used by")
    lines = [format_listing(rows, header)]
    for s in statuses:
        if not s.ok:
            lines.append(f"{s.state.upper()}: {s.detail}")
    return "\n".join(lines)
