"""format_listing: a table when it fits, blocks that fit when it does not, nothing lost either way."""

from gac_bench.listing import format_listing

ROWS = [("alpha", "ready", "a short summary", ""), ("beta", "not ready", "summary " * 12, "set X_REPO and X_CKPT " * 6)]
HEADERS = ["name", "ready", "summary", "detail"]


def test_table_when_it_fits_blocks_when_not():
    assert format_listing(ROWS[:1], HEADERS, width=200).startswith("| name")
    blocks = format_listing(ROWS, HEADERS, width=60)
    assert max(map(len, blocks.splitlines())) <= 60
    assert blocks.splitlines()[0].startswith("alpha  ready")
    flat = " ".join(blocks.split())
    for value in ("summary " * 12, "set X_REPO and X_CKPT " * 6):  # every word of the long fields survives
        assert " ".join(value.split()) in flat
