"""Flagged line numbers, across the slices a chunk is flagged in, match a line-by-line pass."""

from __future__ import annotations

import io
import random
import struct

from app.otc.connector import HEADER, MAX_LINE_BYTES, _Reader, is_plain_line

PLAIN = "T{n},AAPL,2026-01-06T10:00:00Z,101.5,100,B,XNAS"
UNUSUAL = ['"T{n}",AAPL,2026-01-06T10:00:00Z,101.5,100,B,XNAS', "x", "", "T{n},,,,,,"]


def test_flagged_numbers_match_a_line_by_line_pass() -> None:
    rng = random.Random(20)
    lines = []
    for n in range(40_000):
        pick = rng.random()
        if pick < 0.7:
            lines.append(PLAIN.format(n=n))
        elif pick < 0.9999:
            lines.append(rng.choice(UNUSUAL).format(n=n))
        else:
            lines.append("y" * (MAX_LINE_BYTES + 10))  # over-long: cut, and flagged
    data = (HEADER + "\n" + "\n".join(lines) + "\n").encode()
    reader = _Reader(io.BytesIO(data), "t.csv", 7)
    reader.read_header()
    sent = b""
    next_line = 2
    while (payload := reader.next_payload()) is not None:
        # One binary COPY row: (load_id, first_line, line_count, lines).
        fields, _, load_id, _, first, _, count, size = struct.unpack_from("!hiqiqiii", payload)
        body = payload[struct.calcsize("!hiqiqiii") :]
        assert (fields, load_id, first, size) == (4, 7, next_line, len(body))
        assert body.count(b"\n") == count and body.endswith(b"\n")
        next_line += count
        sent += body
    expected = [i + 2 for i, line in enumerate(lines) if not is_plain_line(line.encode())]
    flagged = [int(n) for n in b"".join(reader.check_lines.chunks()).split()]
    reader.check_lines.close()
    assert flagged == expected
    assert reader.check_lines.count == len(expected)
    assert sent.count(b"\n") == len(lines)
    assert max(len(line) for line in sent.split(b"\n")) <= MAX_LINE_BYTES
