"""Input files under SPINE_DATA_DIR: the path rules every file-reading pipeline shares.

A pipeline's `file` param names a file inside the data directory; these checks
keep a client from reading anything else on the server (`..`, absolute paths
elsewhere, symbolic links leading out, FIFOs and devices).
"""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from app.errors import InvalidRequest

__all__ = ["InvalidInputFile", "check_input_path", "file_mtime", "open_input", "resolve_input_path"]


class InvalidInputFile(InvalidRequest):
    """The input file cannot be loaded at all; the message says why."""


def resolve_input_path(data_dir: Path, name: str) -> Path:
    """The real path of `name` inside `data_dir`, or InvalidInputFile.

    Refused: empty names, `..` anywhere, absolute paths outside the directory,
    symbolic links (at any level) that lead outside it, and anything that is
    not an existing regular file.
    """
    if not name or not name.strip() or "\x00" in name:
        raise InvalidInputFile("file must be a non-empty path relative to the data directory")
    if ".." in Path(name).parts:
        raise InvalidInputFile(f"file {name!r} must not contain '..'")
    base = data_dir.resolve()
    candidate = Path(name) if Path(name).is_absolute() else base / name
    shown = name if len(name) <= 200 else name[:200] + "…"
    try:
        real = candidate.resolve()
        if not real.is_relative_to(base):
            # The server's own paths stay out of messages that clients see.
            raise InvalidInputFile(f"file {shown!r} is outside the data directory")
        if not real.exists():
            raise InvalidInputFile(f"file {shown!r} does not exist in the data directory")
        if not real.is_file():
            raise InvalidInputFile(f"file {shown!r} is not a regular file")
    except OSError as exc:  # a name too long, a loop of links, a permission problem
        raise InvalidInputFile(f"file {shown!r} cannot be used: {exc.strerror}") from None
    return real


def check_input_path(data_dir: Path, name: str) -> None:
    """`resolve_input_path` as a params check (at submit and again when run): its problem
    as the ValueError a pipeline's `check` raises."""
    try:
        resolve_input_path(data_dir, name)
    except InvalidInputFile as exc:
        raise ValueError(str(exc)) from None


def file_mtime(path: Path) -> datetime:
    """A file's modification time, as its materialization records it (what a scan compares)."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def open_input(path: Path) -> BinaryIO:
    """Open a resolved input for reading without following a symlink or blocking on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise InvalidInputFile(f"cannot open {path.name!r}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidInputFile(f"{path.name!r} is not a regular file")
    return os.fdopen(fd, "rb")
