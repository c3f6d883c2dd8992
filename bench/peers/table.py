"""The peers' table: a column per system, the leader of each row and by how much.

Kept apart from the runner so it imports no peer library (the unit tests check it
without the `bench` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.harness import median
from bench.report import cell

SPINE = "Market Spine"


@dataclass
class PeerRow:
    """One line of the peers' table: a figure per system, all from this run."""

    label: str
    unit: str
    higher_is_better: bool
    values: dict[str, list[float]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "values": self.values,
            "medians": {k: median(v) for k, v in self.values.items() if v},
        }


def table(rows: list[PeerRow], names: list[str]) -> str:
    """Markdown: one row per scenario, one column per system (median, min-max)."""
    header = ["Scenario", *names, "Leader, and by how much over the next", f"{SPINE} vs leader"]
    lines = [header]
    for row in rows:
        meds = {k: median(v) for k, v in row.values.items() if v}
        cells = [cell(row.values.get(k, []), row.unit) for k in names]
        ranked = sorted(meds, key=meds.__getitem__, reverse=row.higher_is_better)
        lead = spine_vs = "-"
        if len(ranked) >= 2:
            best, second = meds[ranked[0]], meds[ranked[1]]
            lead = f"{ranked[0]}: {_times(best, second, row.higher_is_better)} {ranked[1]}"
            if SPINE in meds:
                spine_vs = (
                    "leads"
                    if ranked[0] == SPINE
                    else f"{_times(meds[SPINE], best, row.higher_is_better)} of the leader"
                )
        lines.append([row.label, *cells, lead, spine_vs])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def _times(a: float, b: float, higher_is_better: bool) -> str:
    """How many times better a is than b (>1 = better), in the row's direction."""
    ratio = a / b if higher_is_better else b / a
    return f"{ratio:.2f}x"
