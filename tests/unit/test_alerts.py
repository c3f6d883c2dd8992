"""docs/alerts.yml: valid Prometheus rules, and their unit tests pass (`promtool test rules`).

promtool comes from Debian's `prometheus` package (scripts/ensure-promtool,
run by `make test`); where it cannot be installed this test skips saying so,
and .ci/run fails on that.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (scripts/ensure-promtool: apt-get install prometheus, as root)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=DOCS, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_the_rules_are_valid() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "5 rules found" in checked.stdout


@needs_promtool
def test_the_rules_unit_tests_pass() -> None:
    tested = _promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_test() -> None:
    rules = (DOCS / "alerts.yml").read_text(encoding="utf-8")
    tests = (DOCS / "alerts_test.yml").read_text(encoding="utf-8")
    names = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(names) == 5
    for name in names:
        assert f"alertname: {name}" in tests, name
