"""The README's commands as a newcomer copies them (issue 31, item 10)."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.S)


def test_one_spelling_of_the_command() -> None:
    """`spine` after activating the venv (said once, at the top), never `.venv/bin/spine`."""
    assert "source .venv/bin/activate" in README.split("## Using it")[0]
    commands = "\n".join(SHELL_BLOCKS)
    assert ".venv/bin/spine" not in commands and ".venv/bin/pytest" not in commands


def test_urls_with_a_query_are_quoted() -> None:
    unquoted = [
        line
        for block in SHELL_BLOCKS
        for line in block.splitlines()
        if "?" in line.split("#")[0] and not re.search(r"'[^']*\?[^']*'", line)
    ]
    assert unquoted == []


def test_the_api_schedule_example_does_not_collide_with_the_cli_one() -> None:
    cli = set(re.findall(r"spine schedules add (\S+)", README))
    api = set(re.findall(r'"name": "([^"]+)"', README))
    assert cli and api and not cli & api
