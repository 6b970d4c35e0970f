"""The listing commands and option parsing of the CLI."""

from click.testing import CliRunner

from gac_bench.cli import main


def test_methods_lists_builtins_with_readiness():
    res = CliRunner().invoke(main, ["methods"], env={"COLUMNS": "100"})
    assert res.exit_code == 0
    firsts = {line.split()[0]: line for line in res.output.splitlines() if line and not line.startswith(" ")}
    assert firsts["identity"].split()[1] == "ready" and firsts["depth-warp"].split()[1] == "ready"
    assert firsts["viewcrafter"].split()[1:3] == ["not", "ready"]  # the upstream checkout is not configured here
    assert "GAC_BENCH_VIEWCRAFTER_REPO" in res.output  # and the block below it says what to set


def test_listings_fit_a_100_column_terminal():
    for command in (["methods"], ["splits"], ["weights"]):
        res = CliRunner().invoke(main, command, env={"COLUMNS": "100"})
        listing = [line for line in res.output.splitlines() if not line.startswith(("MISSING", "HASH-MISMATCH"))]
        assert max(map(len, listing)) <= 100, (command, max(listing, key=len))
    wide = CliRunner().invoke(main, ["splits"], env={"COLUMNS": "400"})
    assert wide.output.startswith("| split")  # a table where it fits


def test_splits_and_weights_list_what_is_missing():
    res = CliRunner().invoke(main, ["splits"])
    assert res.exit_code == 0 and "re10k-test-150" in res.output and "GAC_BENCH_RE10K" in res.output
    res = CliRunner().invoke(main, ["weights", "--check"])
    assert res.exit_code == 1 and "alexnet-owt-7be5be79.pth" in res.output and "missing" in res.output


def test_bad_shard_and_trajectory_are_usage_errors(tmp_path):
    res = CliRunner().invoke(main, ["run", "--method", "identity", "--shard", "5/4", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "1 <= K <= N" in res.output
    res = CliRunner().invoke(main, ["run", "--method", "identity", "--trajectory", "loop", "--runs-dir", str(tmp_path)])
    assert res.exit_code == 2 and "forth-and-back" in res.output
