"""``gac-bench weights --download``: fetch missing weight files into their documented places, verified.

Runs never download; this command does, on a machine with network. For each file: stream it from its source into
``<final name>.part`` beside the final path (resuming a previous ``.part`` with an HTTP range request where the
server allows it), show progress, check the sha256 (full digest or the torch-hub prefix its name carries), and only
then rename it to the final name, so a partial or wrong file never sits where a run would load it. Folder entries
(Bagel, the FLUX VAE) and Hugging Face cache entries (VGGT) are fetched by the Hugging Face CLI: the command says
which one to run.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from gac_bench.weights import WeightFile, file_sha256

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """One line: which file, from where, what went wrong, what was (not) installed."""


def downloadable(weight: WeightFile) -> str | None:
    """None when :func:`download` can fetch ``weight``; else what to run instead."""
    if weight.is_folder or weight.fetch:  # folders and Hugging Face cache entries come with their own command
        return f"{weight.name} is fetched with `{(weight.fetch or '').format(path=weight.path, parent=weight.path.parent)}`"
    return None


def _expected(weight: WeightFile) -> str | None:
    return weight.sha256 or weight.sha256_prefix


def download(weight: WeightFile, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch, verify and install one file; returns its path. Raises :class:`DownloadError`."""
    hint = downloadable(weight)
    if hint:
        raise DownloadError(hint)
    dest = weight.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(weight.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the .part is already whole
            response = None
        else:
            raise DownloadError(f"{weight.name}: {weight.url} answered HTTP {exc.code}; nothing installed") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"{weight.name}: cannot reach {weight.url} ({exc}); nothing installed") from None
    if response is not None:
        with response:
            resumed = have and response.status == 206
            total = response.headers.get("Content-Length")
            total = int(total) + (have if resumed else 0) if total else None
            _stream(response, part, append=bool(resumed), start=have if resumed else 0, total=total, label=weight.name,
                    progress=progress)  # fmt: skip
    digest, expected = file_sha256(part), _expected(weight)
    if expected and not digest.startswith(expected):
        part.unlink(missing_ok=True)
        raise DownloadError(f"{weight.name}: sha256 {digest[:16]}... of the file from {weight.url} does not match the "
                            f"expected {expected}; it was deleted, not installed")  # fmt: skip
    os.replace(part, dest)
    return dest


def _stream(response, part: Path, append: bool, start: int, total: int | None, label: str, progress: bool) -> None:
    from tqdm.auto import tqdm

    with open(part, "ab" if append else "wb") as f, tqdm(total=total, initial=start, unit="B", unit_scale=True,
                                                         desc=label, disable=not progress, file=sys.stderr) as bar:  # fmt: skip
        for block in iter(lambda: response.read(CHUNK), b""):
            f.write(block)
            bar.update(len(block))
