"""``gac-bench report``: one self-contained HTML page for a runs dir.

Leaderboards with 95% CIs and coverage, per-frame curves with 95% CI bands and the number of clips behind each
line, frame strips of chosen clips (ground truth beside every method), failed clips, and the protocol footer with
the provenance of the records. Images are inlined (data URIs): the page is one file that can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from gac_bench import leaderboard
from gac_bench.leaderboard import COLUMNS, HEADERS, Row

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.ci{color:#777;font-size:.85em}
.warn{color:#a40}.strip img{height:96px;margin:1px}.strip td{text-align:left}footer{color:#555;font-size:.85em}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"""
STRIP_FRAMES = (1, 16, 32, 48, 63)


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _jpeg_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _cell_html(row: Row, col: str) -> str:
    cell = row.cells[col]
    if cell is None:
        return f'<td title="{html.escape(row.notes.get(col, ""))}">—</td>'
    digits = 3 if col in ("ssim", "lpips", "r_err", "t_err") else 2
    n = f" (n={cell.n})" if col != "fid" and cell.n < row.scored else ""
    return (f"<td>{cell.mean:.{digits}f}{n}<br><span class=ci>[{cell.ci_low:.{digits}f}, "
            f"{cell.ci_high:.{digits}f}]</span></td>")  # fmt: skip


def tables_html(rows: list[Row]) -> str:
    parts = []
    for (split, traj, subset), group in leaderboard._groups(rows).items():
        title = f"{split} · {traj}" + ("" if subset == "all" else f" · {subset} frames")
        head = "".join(f"<th>{html.escape(HEADERS[c])}</th>" for c in COLUMNS)
        body = "".join(
            f"<tr><td>{html.escape(r.method)}</td>{''.join(_cell_html(r, c) for c in COLUMNS)}"
            f"<td>{r.scored}/{r.total}</td></tr>"
            for r in group
        )
        parts.append(f"<h3>{html.escape(title)}</h3><table><tr><th>Method</th>{head}<th>Coverage</th></tr>{body}</table>")
        if len({r.scored for r in group}) > 1:
            parts.append("<p class=warn>These rows are over different clips; compare them on the clips all cover.</p>")
    failed = [(r, cid, err) for r in rows if r.subset == "all" for cid, err in r.failures.items()]
    if failed:
        items = "".join(f"<li>{html.escape(f'{r.split}/{r.trajectory}/{r.method}/{c}: {e}')}</li>" for r, c, e in failed)
        parts.append(f"<h3>Failed clips (counted in coverage)</h3><ul>{items}</ul>")
    return "\n".join(parts)


def curves_html(runs_dir: Path, rows: list[Row]) -> str:
    """The per-frame figures of :func:`gac_bench.curves.draw_figure`, inlined."""
    import matplotlib.pyplot as plt

    from gac_bench.curves import draw_figure

    parts = []
    for split, traj in sorted({(r.split, r.trajectory) for r in rows}):
        methods = sorted({r.method for r in rows if r.split == split and r.trajectory == traj})
        fig = draw_figure(runs_dir, split, traj, methods)
        if fig is None:
            continue
        parts.append(f'<h3>{html.escape(f"{split} · {traj}")}</h3><img alt="per-frame curves" src="{_png_uri(fig)}">')
        plt.close(fig)
    return "\n".join(parts)


def _ground_truth(split: str, trajectory: str, clip_id: str, frames: tuple[int, ...]) -> list[np.ndarray] | str:
    """Ground-truth frames of a clip, or why they cannot be shown here."""
    try:
        from gac_bench.splits import get_split
        from gac_bench.trajectories import make_trajectory

        sp = get_split(split)
        spec = next(s for s in sp.clips if s.clip_id == clip_id)
        clip = sp.loader(spec)
        traj = make_trajectory(trajectory, spec.start, spec.stride)
        return [clip.frame(int(traj.source_index[i])) for i in frames]
    except Exception as exc:  # the report still renders without the dataset
        return f"ground truth not available here ({type(exc).__name__}: {exc})"


def strips_html(runs_dir: Path, rows: list[Row], clips: list[str] | None, frames: tuple[int, ...]) -> str:
    from PIL import Image

    parts = []
    for split, traj in sorted({(r.split, r.trajectory) for r in rows}):
        methods = sorted({r.method for r in rows if r.split == split and r.trajectory == traj})
        base = Path(runs_dir) / split / traj
        present = sorted({p.parent.name for m in methods for p in (base / m).glob("*/frames")})
        for clip_id in (clips if clips is not None else present[:1]):
            lines = []
            gt = _ground_truth(split, traj, clip_id, frames)
            if isinstance(gt, str):
                lines.append(f"<tr><td>ground truth</td><td>{html.escape(gt)}</td></tr>")
            else:
                lines.append("<tr><td>ground truth</td><td>" + "".join(f'<img src="{_jpeg_uri(f)}">' for f in gt) + "</td></tr>")
            for m in methods:
                files = sorted((base / m / clip_id / "frames").glob("*.png"))
                if not files:
                    continue
                imgs = [np.asarray(Image.open(files[i]).convert("RGB")) for i in frames if i < len(files)]
                lines.append(f"<tr><td>{html.escape(m)}</td><td>" + "".join(f'<img src="{_jpeg_uri(f)}">' for f in imgs) + "</td></tr>")
            title = f"{split} · {traj} · {clip_id} · frames {', '.join(map(str, frames))}"
            parts.append(f"<h3>{html.escape(title)}</h3><table class=strip>{''.join(lines)}</table>")
    return "\n".join(parts)


def provenance(runs_dir: Path) -> dict:
    """The provenance of the newest metrics record (time, command, version, commit, packages, device)."""
    newest = max(Path(runs_dir).rglob("metrics.json"), key=lambda p: p.stat().st_mtime, default=None)
    if newest is None:
        return {}
    return json.loads(newest.read_text()).get("provenance", {})


def build_report(runs_dir: Path, clips: list[str] | None = None, frames: tuple[int, ...] = STRIP_FRAMES) -> str:
    rows = leaderboard.collect_rows(runs_dir)
    if not rows:
        raise ValueError(f"no scored records under {runs_dir}: run `gac-bench run --method NAME` first")
    prov = html.escape(json.dumps(provenance(runs_dir), indent=1, sort_keys=True))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>gac-bench report: {html.escape(str(runs_dir))}</title>
<style>{CSS}</style></head><body>
<h1>gac-bench report</h1><p>Runs dir <code>{html.escape(str(runs_dir))}</code>, generated {when}.</p>
<h2>Leaderboards</h2>{tables_html(rows)}
<h2>Per-frame curves</h2>{curves_html(runs_dir, rows)}
<h2>Frames</h2>{strips_html(runs_dir, rows, clips, frames)}
<footer><h2>Protocol</h2><p>{html.escape(leaderboard.footer(rows=rows))}</p>
<h3>Provenance of the newest record</h3><pre>{prov}</pre></footer></body></html>
"""
