"""Landing patterns: which files under SPINE_DATA_DIR hold which partition of a dataset.

A pattern is a path relative to the data directory with tokens:
`{date:%Y%m%d}` or `{week:%Y%m%d}` (any name; the strftime codes %Y %m %d %y),
`{half}` (`a` or `b`, with a `%Y%m` date for a half-month) and the second key,
written `{key2}` or by its own name (`{market}`, `{tier}`: any token without a
date format, in a dataset that has second keys), as one of the names the dataset
gives its second keys, in the case files write it.
The file extension matches in any case (`.TXT` as `.txt`): publishers change it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from app.engine.datasets import HALF_MONTH_B_STARTS, Dataset, Partition, period_start

__all__ = ["LandedFile", "LandingPattern", "landed_files"]

_TOKEN = re.compile(r"\{(\w+)(?::([^}]*))?\}")
_CODES = {"%Y": r"\d{4}", "%m": r"\d{2}", "%d": r"\d{2}", "%y": r"\d{2}"}
"""The strftime codes a pattern may use; each becomes a group named by its letter."""


@dataclass(frozen=True)
class LandedFile:
    """A file that matched: its path relative to the data directory and its partition."""

    path: str
    partition: Partition


class LandingPattern:
    """A dataset's landing pattern, compiled."""

    def __init__(self, dataset: Dataset) -> None:
        if dataset.landing is None:
            raise ValueError(f"dataset {dataset.name} has no landing pattern")
        self.dataset = dataset
        stem, dot, extension = dataset.landing.rpartition(".")
        if not dot or "/" in extension or "{" in extension:
            stem, extension = dataset.landing, ""
        self._date_format = ""
        regex = self._compile(stem)
        if extension:
            regex += r"\." + f"(?i:{re.escape(extension)})"
        self._regex = re.compile(regex + "$")
        if not self._date_format:
            raise ValueError(f"dataset {dataset.name}: its pattern has no date token")

    def _compile(self, text: str) -> str:
        parts: list[str] = []
        at = 0
        for token in _TOKEN.finditer(text):
            parts.append(re.escape(text[at : token.start()]))
            name, fmt = token[1], token[2]
            if name == "half":
                parts.append("(?P<half>[ab])")
            elif name == "key2" or (not fmt and self.dataset.key2):
                # The names files use when the dataset gives some, else the keys.
                names = sorted(self.dataset.key2_names or self.dataset.key2, key=len)
                alternatives = "|".join(re.escape(n) for n in reversed(names))
                parts.append(f"(?P<key2>{alternatives})")
            else:
                if not fmt:
                    raise ValueError(f"{{{name}}} needs a date format, e.g. {{{name}:%Y%m%d}}")
                if self._date_format:
                    raise ValueError(f"dataset {self.dataset.name}: its pattern has two dates")
                self._date_format = fmt
                parts.append(_date_regex(fmt))
            at = token.end()
        parts.append(re.escape(text[at:]))
        return "".join(parts)

    def match(self, relative: str) -> Partition | None:
        """The partition a relative path holds, or None when it does not match."""
        found = self._regex.match(relative)
        if not found:
            return None
        groups = found.groupdict()
        day = _day(groups)
        if day is None:
            return None
        scheme = self.dataset.scheme
        if scheme == "half_month":
            day = day.replace(day=1 if groups.get("half", "a") == "a" else HALF_MONTH_B_STARTS)
        start = period_start(scheme, day)
        if start != day and scheme != "half_month":
            return None  # a week's file named by another day than its Monday
        key2 = self.dataset.key2_of(groups["key2"]) if groups.get("key2") else None
        if bool(key2) != bool(self.dataset.key2) or start < self.dataset.start:
            return None
        return Partition(scheme, start, key2)


def _date_regex(fmt: str) -> str:
    """The format as a regex with a named group per code (parsed by `_day`: strptime is
    a tenth of a scan's time over 10,000 files)."""
    out = re.escape(fmt)
    for code, regex in _CODES.items():
        if fmt.count(code) > 1:
            raise ValueError(f"date format {fmt!r} repeats {code}")
        out = out.replace(re.escape(code), f"(?P<{code[1]}>{regex})", 1)
    return out


def _day(groups: dict[str, str | None]) -> date | None:
    """The date the named groups spell (%y as strptime reads it: 69-99 are 19xx), or None
    when they spell none (a 31st of April, a month 13). A day-less format is the 1st."""
    if groups.get("Y") is not None:
        year = int(groups["Y"])  # type: ignore[arg-type]
    elif groups.get("y") is not None:
        short = int(groups["y"])  # type: ignore[arg-type]
        year = short + (1900 if short >= 69 else 2000)
    else:
        return None
    try:
        return date(year, int(groups.get("m") or 1), int(groups.get("d") or 1))
    except ValueError:
        return None


def landed_files(data_dir: Path, dataset: Dataset) -> Iterator[tuple[LandedFile, os.stat_result]]:
    """Every file under the pattern's directory that matches it, with its stat.

    Only the directory part before the first token is walked, one level at a
    time, so a scan of a landing area reads directory entries and stats, never
    file contents.
    """
    pattern = LandingPattern(dataset)
    assert dataset.landing is not None
    fixed = dataset.landing.split("{", 1)[0].rsplit("/", 1)[0] if "/" in dataset.landing else ""
    root = data_dir / fixed if fixed else data_dir
    if not root.is_dir():
        return
    stack = [(root, f"{fixed}/" if fixed else "")]  # a directory, its path relative to data_dir
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), f"{prefix}{entry.name}/"))
                    continue
                relative = prefix + entry.name
                partition = pattern.match(relative)
                if partition is not None:
                    yield LandedFile(relative, partition), entry.stat()
