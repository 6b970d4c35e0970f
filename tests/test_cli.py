"""The listing commands and option parsing of the CLI."""

from click.testing import CliRunner

from gac_bench.cli import main


def test_methods_lists_builtins_with_readiness():
    res = CliRunner().invoke(main, ["methods"])
    assert res.exit_code == 0
    lines = {line.split("|")[1].strip(): line for line in res.output.splitlines() if line.startswith("|")}
    assert "ready" in lines["identity"] and "yes" in lines["depth-warp"]
    assert "no" in lines["viewcrafter"].split("|")[3]  # the upstream checkout is not configured here


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
