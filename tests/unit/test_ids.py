"""Execution ids: version 7 UUIDs whose time the history's look-ups prune by."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from app.engine.ids import made_at, new_ids


def test_ids_are_version_7_with_the_time_they_were_made() -> None:
    before = datetime.now(UTC)
    made = new_ids(1000)
    after = datetime.now(UTC)
    assert len(set(made)) == 1000
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        when = made_at(text)
        assert when is not None
        assert before - timedelta(milliseconds=1) <= when <= after


def test_ids_of_later_milliseconds_sort_after_earlier_ones() -> None:
    first = new_ids(1)[0]
    later = first
    while made_at(later) == made_at(first):
        later = new_ids(1)[0]
    assert later > first  # the text's order is the time's: the primary key appends


def test_ids_that_carry_no_time() -> None:
    assert made_at(str(uuid.uuid4())) is None
    assert made_at("not an id") is None
    assert made_at("zzzzzzzz-zzzz-7zzz-bzzz-zzzzzzzzzzzz") is None
    assert made_at("ffffffff-ffff-7fff-bfff-ffffffffffff") is None  # past datetime's range
    assert made_at("e677d21f-d000-7000-8000-000000000000") is None  # 9999-12-31: no window
    assert made_at("+1a24f83-4b28-7efc-924e-cc8363823535") is None  # int() would take it
    assert made_at("01A24F83-4B28-7EFC-924E-CC8363823535") is None  # not as written here
