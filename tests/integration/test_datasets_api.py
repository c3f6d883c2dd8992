"""The datasets' API: the list, one dataset, partitions paged by key, a FINRA week's
lineage (which file, its sha256, each restatement's counts), backfills to follow and
cancel, keys taken whole as paths."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app import db
from app.config import get_settings
from app.finra.pipelines import ingest_file
from tests.api_support import Client, api_client, problem
from tests.finra_support import WEEK_FILES


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    root = tmp_path / "landing"
    (root / "finra").mkdir(parents=True)
    monkeypatch.setenv("SPINE_DATA_DIR", str(root))
    get_settings.cache_clear()
    return root


@pytest.fixture
async def client(landing: Path) -> AsyncIterator[Client]:
    async with api_client() as c:
        yield c


async def _ingest(url: str, path: Path, name: str, execution_id: str) -> dict[str, Any]:
    pool = await db.open_async_pool(url, get_settings())
    try:
        return await ingest_file(pool, execution_id=execution_id, path=path, source_file=name)
    finally:
        await pool.close()


async def test_lineage_backfills_and_listings(
    client: Client, landing: Path, database_url: str
) -> None:
    weeks = sorted(WEEK_FILES)
    first = WEEK_FILES[weeks[0]]
    landed = landing / "finra" / first.name
    shutil.copy2(first, landed)
    await _ingest(database_url, landed, f"finra/{first.name}", "load-1")

    listed = (await client.get("/api/v1/datasets")).json()
    finra = next(d for d in listed if d["name"] == "finra_otc_weekly")
    assert finra["partitions"]["loaded"] == 1 and finra["newest_loaded"] == f"{weeks[0]}/OTC"
    one = (await client.get("/api/v1/datasets/finra_otc_weekly")).json()
    assert one["key2"] == ["OTC", "T1", "T2"]
    assert problem(await client.get("/api/v1/datasets/nope"), 404)

    page = await client.get(
        "/api/v1/datasets/finra_otc_weekly/partitions",
        params={"from": str(weeks[0]), "to": str(weeks[2]), "limit": 2},
    )
    assert page.status_code == 200, page.text
    assert [p["key"] for p in page.json()] == [f"{weeks[0]}/OTC", f"{weeks[0]}/T1"]
    assert page.json()[0]["state"] == "loaded"
    nxt = await client.get(page.links["next"]["url"])
    assert [p["key"] for p in nxt.json()] == [f"{weeks[0]}/T2", f"{weeks[1]}/OTC"]
    loaded_only = await client.get(
        "/api/v1/datasets/finra_otc_weekly/partitions", params={"state": "loaded"}
    )
    assert [p["key"] for p in loaded_only.json()] == [f"{weeks[0]}/OTC"]

    # A restatement: one row changed.
    lines = first.read_text(encoding="utf-8").splitlines()
    fields = lines[1].split("|")
    fields[5] = str(int(fields[5]) + 1)
    landed.write_text("\n".join([lines[0], "|".join(fields), *lines[2:]]) + "\n")
    await _ingest(database_url, landed, f"finra/{first.name}", "load-2")
    lineage = await client.get(f"/api/v1/datasets/finra_otc_weekly/partitions/{weeks[0]}/OTC")
    assert lineage.status_code == 200, lineage.text
    body = lineage.json()
    assert body["state"] == "loaded"
    newest, older = body["materializations"]
    assert newest["source_path"] == f"finra/{first.name}"
    assert newest["source_sha256"] == hashlib.sha256(landed.read_bytes()).hexdigest()
    assert older["source_sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert (newest["inserted"], newest["changed"], newest["removed"]) == (0, 1, 0)
    assert newest["superseded_id"] == older["id"] and newest["execution_id"] == "load-2"
    assert body["upstream"] == body["downstream"] == []
    bad_key = await client.get(f"/api/v1/datasets/finra_otc_weekly/partitions/{weeks[0]}/T9")
    assert problem(bad_key, 422)

    made = await client.post(
        "/api/v1/datasets/finra_otc_weekly/backfills",
        json={"from": str(weeks[0]), "to": str(weeks[1]), "key2": "OTC"},
    )
    assert made.status_code == 201, made.text
    backfill = made.json()
    # No file landed for it: FINRA's remote source fetches it (issue 27).
    assert {i["key"]: i["outcome"] for i in backfill["items"]} == {f"{weeks[1]}/OTC": "submitted"}
    typo = await client.post(
        "/api/v1/datasets/finra_otc_weekly/backfills",
        json={"from": str(weeks[0]), "to": str(weeks[1]), "onyl": "all"},
    )
    assert typo.status_code in (400, 422)
    everything = await client.post(
        "/api/v1/datasets/finra_otc_weekly/backfills",
        json={"from": str(weeks[0]), "to": str(weeks[0]), "only": "all", "key2": "otc"},
    )
    items = everything.json()["items"]
    assert [(i["key"], i["outcome"]) for i in items] == [(f"{weeks[0]}/OTC", "submitted")]
    bid = everything.json()["id"]
    shown = (await client.get(f"/api/v1/backfills/{bid}")).json()
    assert shown["counts"] == {"pending": 1}
    cancelled = await client.post(f"/api/v1/backfills/{bid}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["counts"] == {"cancelled": 1}
    listed = {b["id"]: b for b in (await client.get("/api/v1/backfills")).json()}
    assert bid in listed and backfill["id"] in listed
    # The list counts each backfill's items as its own page does (one statement for all).
    assert listed[bid]["counts"] == {"cancelled": 1} and listed[bid]["items"] == []
    assert problem(await client.get("/api/v1/backfills/nope"), 404)


async def test_a_bad_query_parameter_is_named_as_the_url_names_it(client: Client) -> None:
    """`state`, `from` and `to` are handler arguments of other names (`state` is the
    app's state in Litestar): the problem names what the client sent."""
    path = "/api/v1/datasets/sec_ftd/partitions"
    bad_state = await client.get(path, params={"state": "bogus"})
    long_from = await client.get(path, params={"from": "2" * 41})
    for answer, field in ((bad_state, "state"), (long_from, "from")):
        body = problem(answer, 400)
        assert [e["field"] for e in body["errors"]] == [field]
        assert body["detail"].startswith(f"invalid request: `{field}`: ")
