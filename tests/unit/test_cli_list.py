"""`spine list`: readable types, the descriptions in code, one aligned column (no server)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from app.catalog import default_registry
from app.cli import main


def test_list_is_readable_aligned_and_described() -> None:
    result = CliRunner().invoke(main, ["list"])
    assert result.exit_code == 0, result.output
    params = [line for line in result.output.splitlines() if line.startswith("    ")]
    assert "    start_date: date or none = none" in result.output
    assert "    seconds: float = 1.0" in result.output
    for noise in ("Optional", "datetime.", "NoneType", "typing."):
        assert noise not in result.output
    # Every description the code has is shown, starting in the same column for every param.
    described = 0
    for item in default_registry():
        for doc in item.param_docs():
            if doc.description:
                described += 1
                assert doc.description in result.output
    starts = {m.start(1) for line in params if (m := re.search(r"\S {2,}(\S)", line))}
    assert described and len(starts) == 1, params
