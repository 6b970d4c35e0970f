"""The ``gac-bench`` command line (names fixed by DESIGN.md)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from gac_bench.protocol import PAPER_V1


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        k, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise click.BadParameter(f"{value!r}: need 1 <= K <= N")
    return k, n


def _trajectories(value: str) -> tuple[str, ...]:
    if value == "all":
        return PAPER_V1.trajectories
    if value not in PAPER_V1.trajectories:
        raise click.BadParameter(f"{value!r}: choose all, {', '.join(PAPER_V1.trajectories)}")
    return (value,)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _require_runs_dir(runs_dir: Path) -> None:
    if not runs_dir.is_dir():
        _fail(f"no runs folder {runs_dir} (give the --runs-dir that `gac-bench run` wrote to)")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Log details (per-clip warnings are always logged).")
def main(verbose: bool) -> None:
    """gac-bench: evaluate camera-controlled scene video generators under protocol paper-v1."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


_run_options = [
    click.option("--split", default="synthroom", show_default=True, help="Split name (see `gac-bench splits`)."),
    click.option("--trajectory", "trajectory", default="all", show_default=True,
                 help="all | dataset | forth-and-back"),
    click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Where the split's data lives."),
    click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True),
    click.option("--limit", type=int, default=None, help="Only the first N clips of the split (then --shard)."),
    click.option("--shard", default=None, help="K/N: this process takes clips K, K+N, ... (1-based)."),
    click.option("--clips", default=None, help="Comma-separated clip ids to run (a subset of the split)."),
    click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"])),
    click.option("--seed", default=0, show_default=True, type=int),
    click.option("--estimator", default="auto", show_default=True,
                 help="Pose estimator for R_err/T_err: auto (the split's: vggt for paper splits, colmap for "
                      "synthroom), colmap, vggt, none."),
    click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    click.option("--timeout", type=float, default=None,
                 help="Seconds one clip-trajectory's generation may take; past it the clip is recorded as failed."),
]


def _with_run_options(fn):
    for opt in reversed(_run_options):
        fn = opt(fn)
    return fn


def _run_opts(split, trajectory, data_root, runs_dir, limit, shard, clips, device, seed, estimator, no_progress,
              timeout=None):  # fmt: skip
    from gac_bench.runner import RunOptions

    return RunOptions(
        split=split, trajectories=_trajectories(trajectory), data_root=data_root, runs_dir=runs_dir, limit=limit,
        shard=_shard(shard), clips=tuple(clips.split(",")) if clips else None, device=device, seed=seed,
        progress=not no_progress, estimator=estimator, timeout_s=timeout,
    )


def _assign_options(methods: tuple[str, ...], pairs: dict[str, str]) -> list[dict[str, str]]:
    """Options of each method: ``NAME.key=value`` targets method NAME; a plain ``key=value`` goes to every method
    that has such an option (to the only method when there is one, which then says if it has none)."""
    from gac_bench.registry import get_method_class

    per = [dict() for _ in methods]
    plain = {}
    for key, value in pairs.items():
        target, _, sub = key.rpartition(".")
        if target:
            if target not in methods:
                _fail(f"--option {key}={value}: no --method {target!r} in this run (methods: {', '.join(methods)})")
            per[methods.index(target)][sub] = value
        else:
            plain[key] = value
    if len(methods) == 1:
        per[0].update(plain)
        return per
    for key, value in plain.items():
        takers = [i for i, m in enumerate(methods) if key in _option_names(get_method_class(m))]
        if not takers:
            _fail(f"--option {key}={value}: none of the methods ({', '.join(methods)}) has an option {key!r}; "
                  f"target one with --option METHOD.{key}=VALUE")
        for i in takers:
            per[i][key] = value
    return per


def _option_names(cls) -> set[str]:
    import dataclasses

    config = getattr(cls, "Config", None)
    return {f.name for f in dataclasses.fields(config)} if config and dataclasses.is_dataclass(config) else set()


def _row_names(methods: tuple[str, ...], names: tuple[str, ...]) -> list[str | None]:
    """``--name LABEL`` (one method) or ``--name METHOD=LABEL`` (any number) -> the label of each method's row."""
    import re

    out: list[str | None] = [None] * len(methods)
    for item in names:
        method, _, label = item.rpartition("=") if "=" in item else ("", "", item)
        if not method:
            if len(methods) != 1:
                _fail(f"--name {item}: with several methods write --name METHOD=LABEL")
            method = methods[0]
        if method not in methods:
            _fail(f"--name {item}: no --method {method!r} in this run")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", label):
            _fail(f"--name {item}: a label is letters, digits and . _ + - (it names a folder)")
        out[methods.index(method)] = label
    labels = [lab or m for m, lab in zip(methods, out)]
    if len(set(labels)) != len(labels):
        _fail(f"two rows would be named alike ({', '.join(labels)}): give each variant its own --name")
    return out


def _run_methods(methods: list[tuple[str, dict]], opts, names: list[str | None] | None = None) -> None:
    from gac_bench import leaderboard
    from gac_bench.api import MethodUnavailable
    from gac_bench.registry import DuplicateMethodError, UnknownMethodError
    from gac_bench.runner import check_method, make_scorer, run_method, run_noise_floor
    from gac_bench.scoring import missing_notes

    for method, options in methods:  # a typo or a missing package fails before any metric loads
        try:
            check_method(method, options)
        except (UnknownMethodError, MethodUnavailable) as exc:
            _fail(str(exc).strip("'\""))
    try:
        scorer = make_scorer(opts)
    except (KeyError, ValueError) as exc:
        _fail(str(exc).strip("'\""))
    for line in missing_notes(scorer.unavailable):
        click.echo(f"note: {line}", err=True)
    failed_total = 0
    for (method, options), label in zip(methods, names or [None] * len(methods)):
        try:
            result = run_method(method, options, opts, scorer=scorer, name=label)
        except (UnknownMethodError, DuplicateMethodError, MethodUnavailable, KeyError, ValueError) as exc:
            _fail(str(exc).strip("'\""))
        new = sum(o.generated for o in result.outcomes)
        failed_total += len(result.failures)
        deferred = [o for o in result.outcomes if o.status == "deferred"]
        click.echo(f"{result.method}: {len(result.outcomes)} clip-trajectories, {new} generated now, "
                   f"{len(result.failures)} failed, {len(deferred)} deferred", err=True)
        if deferred:
            click.echo(f"  deferred, e.g. {deferred[0].clip_id}: {deferred[0].error}", err=True)
        for o in result.failures:
            click.echo(f"  failed {o.clip_id} ({o.trajectory}): {o.error}", err=True)
    floor = run_noise_floor(opts, scorer)
    if floor is not None and floor.failures:
        click.echo(f"{floor.method}: {len(floor.failures)} failed, e.g. {floor.failures[0].error}", err=True)
    rows = leaderboard.write_leaderboard(opts.runs_dir)
    click.echo(leaderboard.to_markdown(rows))
    click.echo(f"wrote {opts.runs_dir / 'leaderboard.md'}, .csv, .json", err=True)
    if failed_total:
        click.echo(f"error: {failed_total} clip-trajectories failed (recorded; the table counts them in coverage)",
                   err=True)  # fmt: skip
        sys.exit(1)


@main.command()
@click.option("--method", "methods", multiple=True, required=True,
              help="Registered name or package.module:Class; repeat to run several.")
@click.option("--option", "options", multiple=True,
              help="Method option key=value (repeatable); METHOD.key=value targets one method.")
@click.option("--name", "names", multiple=True,
              help="Row (and runs folder) name: LABEL with one method, METHOD=LABEL with several.")
@_with_run_options
def run(methods, options, names, **kwargs) -> None:
    """Generate missing clips, score unscored ones, print the leaderboard. Safe to rerun after an interruption.

    Exit status: 0 when every selected clip was scored, 1 when any failed (the table is still written), 2 for
    usage errors and methods that cannot run here."""
    from gac_bench.api import parse_option_pairs
    from gac_bench.registry import UnknownMethodError

    try:
        parsed = parse_option_pairs(options)
        per_method = _assign_options(tuple(methods), parsed)
    except (ValueError, UnknownMethodError) as exc:
        _fail(str(exc).strip("'\""))
    labels = _row_names(tuple(methods), tuple(names))
    _run_methods(list(zip(methods, per_method)), _run_opts(**kwargs), labels)


@main.command()
@click.option("--method", required=True, help="Name under which the frames are recorded.")
@click.option("--frames-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="A folder per clip (PNG/JPG frames in name order, or <clip_id>.mp4). One trajectory per folder: "
                   "--trajectory dataset (the default here) or forth-and-back.")
@_with_run_options
def score(method, frames_dir, **kwargs) -> None:
    """Score frames produced elsewhere, writing the same records as `run`."""
    from gac_bench.precomputed import precomputed_method_spec

    if kwargs["trajectory"] == "all":  # the shared default; a frames folder holds one trajectory
        kwargs["trajectory"] = "dataset"
    opts = _run_opts(**kwargs)
    _run_methods([(precomputed_method_spec(), {"frames_dir": str(frames_dir), "name": method})], opts)


@main.command()
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "csv", "json", "latex"]))
@click.option("--plots", is_flag=True, help="Also draw per-frame curves to <runs-dir>/plots/*.png.")
@click.option("--paper", is_flag=True, help="Print the paper's Tables 1-6: reproduced rows beside Tables 1-2, our small-scale "
              "ablation rows (results/ablations/) beside Tables 3-6.")
@click.option("--against", "base", default=None, metavar="NAME",
              help="Print every other row's paired difference from method NAME over the clips both scored "
              "(mean [95% bootstrap CI]; md or csv) instead of the leaderboard.")
def table(runs_dir: Path, fmt: str, plots: bool, paper: bool, base: str | None) -> None:
    """Rebuild the leaderboards from the per-clip records and print one format."""
    from gac_bench import curves, leaderboard

    if paper and fmt == "json":
        _fail("--paper prints md, csv or latex")
    if base is not None:
        _paired_table(runs_dir, base, fmt, paper)
        return
    rows = []
    if runs_dir.is_dir():
        rows = leaderboard.write_leaderboard(runs_dir)
        per_frame = curves.collect_curves(runs_dir)
        click.echo(f"wrote {curves.write_curves(runs_dir, per_frame)}", err=True)
        if plots:
            for path in curves.plot_curves(runs_dir, runs_dir / "plots"):
                click.echo(f"wrote {path}", err=True)
    elif paper:  # the paper's tables and our ablation rows need no runs of one's own
        click.echo(f"note: no runs folder {runs_dir}: the paper's tables without reproduced rows", err=True)
    else:
        _require_runs_dir(runs_dir)
    if paper:
        from gac_bench.paper_tables import paper_comparison

        click.echo(paper_comparison(rows, fmt))
        return
    render = {"md": leaderboard.to_markdown, "csv": leaderboard.to_csv, "json": leaderboard.to_json,
              "latex": leaderboard.to_latex}[fmt]
    click.echo(render(rows))


def _paired_table(runs_dir: Path, base: str, fmt: str, paper: bool) -> None:
    from gac_bench.paired import paired_csv, paired_markdown, paired_rows

    if paper or fmt not in ("md", "csv"):
        _fail("--against prints md or csv, without --paper")
    _require_runs_dir(runs_dir)
    try:
        rows = paired_rows(runs_dir, base)
    except ValueError as exc:
        _fail(str(exc))
    if not rows:
        _fail(f"{base!r} is the only method under {runs_dir}: nothing to compare it with")
    click.echo(paired_markdown(rows) if fmt == "md" else paired_csv(rows))


@main.command()
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Default: <runs-dir>/report.html.")
@click.option("--clips", default=None, help="Comma-separated clip ids to show as frame strips (default: the first).")
@click.option("--frames", default="1,16,32,48,63", show_default=True, help="Frame indices of the strips.")
def report(runs_dir: Path, out: Path | None, clips: str | None, frames: str) -> None:
    """One self-contained HTML page: leaderboards, per-frame curves with CI bands, frame strips, provenance."""
    from gac_bench.report import build_report
    from gac_bench.records import write_text_atomic

    _require_runs_dir(runs_dir)
    try:
        idx = tuple(int(f) for f in frames.split(",") if f.strip())
    except ValueError:
        _fail(f"--frames {frames!r}: expected comma-separated frame indices")
    try:
        page = build_report(runs_dir, [c for c in clips.split(",") if c] if clips else None, idx)
    except ValueError as exc:
        _fail(str(exc), code=1)
    path = out or runs_dir / "report.html"
    write_text_atomic(path, page)
    click.echo(f"wrote {path} ({len(page) / 1e6:.1f} MB)")


@main.command()
def methods() -> None:
    """List methods: name, summary, and whether they can run here."""
    from gac_bench.listing import format_listing
    from gac_bench.registry import describe_methods

    rows = [(m.name, "ready" if m.available else "not ready", m.summary, "" if m.available else m.detail)
            for m in describe_methods()]  # fmt: skip
    click.echo(format_listing(rows, ["method", "ready", "summary", "detail"]))


@main.command()
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
def splits(data_root) -> None:
    """List splits: size, where their data is looked for, and whether it is found."""
    from gac_bench.listing import format_listing
    from gac_bench.real_splits import describe_splits

    rows = [(s.name, f"{s.size} clips", "data found" if s.found else "no data", s.data_location, s.detail)
            for s in describe_splits(data_root)]  # fmt: skip
    click.echo(format_listing(rows, ["split", "clips", "data", "location", "detail"]))


@main.command()
@click.option("--check", is_flag=True, help="Also verify the sha256 of every present file.")
@click.option("--download", is_flag=True,
              help="Fetch the missing (or mismatching) files NAME... (default: all that can be) into their places, "
                   "verified; needs network. Runs themselves never download.")
@click.argument("names", nargs=-1)
def weights(check: bool, download: bool, names: tuple[str, ...]) -> None:
    """List every weight file a metric or method needs, and whether it is present (or --download them)."""
    from gac_bench.weights import WEIGHT_FILES, check_weights, format_weights_table, list_weights

    if names and not download:
        _fail("names are for --download NAME ...")
    if download:
        _download_weights(names, WEIGHT_FILES)
        return
    statuses = check_weights() if check else list_weights()
    click.echo(format_weights_table(statuses))
    if check and any(s.state != "present" for s in statuses):
        sys.exit(1)


def _download_weights(names: tuple[str, ...], registry: dict) -> None:
    from gac_bench.download import DownloadError, download, downloadable
    from gac_bench.weights import weight_status

    unknown = [n for n in names if n not in registry]
    if unknown:
        _fail(f"unknown weight file(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    chosen = [registry[n] for n in names] if names else [w for w in registry.values() if not downloadable(w)]
    failed = 0
    for weight in chosen:
        if weight_status(weight, verify_hash=True).state == "present":
            click.echo(f"{weight.name}: present and verified at {weight.path}", err=True)
            continue
        try:
            click.echo(f"{weight.name}: installed at {download(weight)}", err=True)
        except DownloadError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


@main.group()
def data() -> None:
    """Write datasets to disk."""


@data.command("synthroom")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder to write (default: the cache under GAC_BENCH_HOME that the splits read).")
@click.option("--set", "room_set", default="synthroom", show_default=True,
              type=click.Choice(["synthroom", "synthroom-train", "synthroom-val"]),
              help="Which rooms: the evaluation split, or GaC's training (seed 1) or validation (seed 2) rooms.")
@click.option("--seed", default=None, type=int, help="Another seed for the evaluation-sized split (experiments).")
@click.option("--workers", default=None, type=int, help="Render processes (default: one per available core).")
def data_synthroom(out: Path | None, room_set: str, seed: int | None, workers: int | None) -> None:
    """Render synthroom rooms in the RealEstate10K raw form (in parallel, once; complete copies are kept)."""
    from gac_bench.datasets import synthroom

    if seed is not None and room_set != "synthroom":
        raise click.UsageError("--seed applies to --set synthroom only; the training and validation sets have "
                               "fixed seeds")
    if seed is not None:
        root = synthroom.ensure_synthroom(out, seed=seed, workers=workers)
    else:
        root = synthroom.ensure_room_set(room_set, out, workers=workers)
    click.echo(f"{room_set} written to {root}")


if __name__ == "__main__":
    main()
