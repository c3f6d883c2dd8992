"""The COPY line sanitiser both domains share: every line stays one whole raw row."""

from __future__ import annotations

import pytest

from app.copy_lines import REPLACEMENT, refuse_utf16, sanitize
from app.files import InvalidInputFile

R = REPLACEMENT


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a|b\r\nc|d\r\n", b"a|b\nc|d\n"),  # CRLF -> LF
        (b"a\rb\n", b"a" + R + b"b\n"),  # a stray CR
        (b"a\xffb\n", b"a" + R + b"b\n"),  # not UTF-8
        (b"a\x00b\x01c\x02d\n", b"a" + R + b"b" + R + b"c" + R + b"d\n"),  # NUL, delimiter, quote
        (b"x\n\\.\ny\n", b"x\n\x02\\.\x02\ny\n"),  # the end-of-data marker, quoted
        (b"caf\xc3\xa9 \\. ok\n", b"caf\xc3\xa9 \\. ok\n"),  # valid text is left alone
    ],
)
def test_sanitize(body: bytes, expected: bytes) -> None:
    assert sanitize(body) == expected
    assert sanitize(body).count(b"\n") == body.replace(b"\r\n", b"\n").count(b"\n")


def test_utf16_is_refused() -> None:
    with pytest.raises(InvalidInputFile, match="UTF-16"):
        refuse_utf16(b"\xff\xfeh\x00", "f.csv")
    refuse_utf16(b"header\n", "f.csv")
