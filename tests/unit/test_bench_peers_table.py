"""The peers' table names each row's leader and the margin in the row's own direction."""

from __future__ import annotations

from bench.peers.table import SPINE, PeerRow, table


def _line(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {label} "))


def test_higher_is_better_leader_and_margin() -> None:
    row = PeerRow("drain", "exec/s", True, {SPINE: [500.0], "peer": [1000.0, 900.0, 1100.0]})
    line = _line(table([row], [SPINE, "peer"]), "drain")
    assert "peer: 2.00x Market Spine" in line
    assert "0.50x of the leader" in line


def test_lower_is_better_leader_and_margin() -> None:
    row = PeerRow("p50", "ms", False, {SPINE: [2.0], "peer": [3.0], "other": [6.0]})
    line = _line(table([row], [SPINE, "peer", "other"]), "p50")
    assert "Market Spine: 1.50x peer" in line
    assert line.rstrip(" |").endswith("leads")


def test_a_system_without_figures_shows_a_dash() -> None:
    row = PeerRow("drain", "exec/s", True, {SPINE: [1.0]})
    line = _line(table([row], [SPINE, "peer"]), "drain")
    assert "| -" in line
