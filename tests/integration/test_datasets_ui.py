"""The dashboard's datasets pages: the calendar strip coloured by state, a partition's
lineage, the backfills with their progress; under the same content security policy."""

from __future__ import annotations

import hashlib
import re

from app import db
from app.config import get_settings
from app.finra.pipelines import ingest_file
from tests.api_support import api_client
from tests.finra_support import WEEK_FILES


async def test_the_datasets_page_and_a_partitions_lineage(database_url: str) -> None:
    week = sorted(WEEK_FILES)[0]
    path = WEEK_FILES[week]
    pool = await db.open_async_pool(database_url, get_settings())
    try:
        await ingest_file(pool, execution_id="load-1", path=path, source_file=path.name)
    finally:
        await pool.close()
    async with api_client() as client:
        made = await client.post(
            "/api/v1/datasets/otc_metrics_daily/backfills",
            json={"from": "2026-01-05", "to": "2026-01-06", "only": "all"},
        )
        assert made.status_code == 201, made.text
        page = await client.get("/ui/datasets")
        assert page.status_code == 200, page.text
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        html = page.text
        loaded = f'title="{week}/OTC: loaded"'
        assert loaded in html and 'class="cell state-loaded"' in html
        assert re.search(r'class="cell state-late"', html)  # the tiers never loaded
        assert "pending 2" in html and made.json()["id"][-8:] in html
        assert 'href="/ui/datasets"' in html  # in the menu
        lineage = await client.get(f"/ui/datasets/finra_otc_weekly/partitions/{week}/OTC")
        assert lineage.status_code == 200, lineage.text
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert sha[:12] in lineage.text and "load-1"[:8] in lineage.text
        assert "state-loaded" in lineage.text
        assert (await client.get("/ui/datasets/nope/partitions/2026-01-05")).status_code == 404
        css = await client.get("/ui/static/datasets.css")
        assert css.status_code == 200 and ".state-late" in css.text
