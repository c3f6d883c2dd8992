"""FINRA's Query API as a remote source: OTC Transparency weekly summaries by week and tier.

`POST {SPINE_SOURCE_FINRA_API}/data/group/otcMarket/name/weeklySummary` with
filters on `weekStartDate`, `tierIdentifier` and `summaryTypeCode`, paged by
`limit`/`offset`, answered as pipe-delimited text. The landing file keeps the
committed files' header and field order (`FIELDS`), so `finra_weekly_ingest`
takes it unchanged. The API's `lastUpdateDate` is when FINRA last updated the
data, not the week: the partition passes `week` (the dataset's params).

The summary type picks the venues: `OTC_W_SMBL_FIRM` (non-ATS, per firm) or
`ATS_W_SMBL_FIRM` (ATS), one source each (`weekly_source`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from app.engine.datasets import Partition
from app.engine.sources import PagedQuery, RemoteSource, TokenEndpoint

__all__ = ["ATS_SUMMARY", "FIELDS", "NON_ATS_SUMMARY", "TOKEN", "weekly_source"]

NON_ATS_SUMMARY: Final = "OTC_W_SMBL_FIRM"
ATS_SUMMARY: Final = "ATS_W_SMBL_FIRM"
FIELDS: Final = (
    "tierDescription",
    "issueSymbolIdentifier",
    "issueName",
    "marketParticipantName",
    "MPID",
    "totalWeeklyShareQuantity",
    "totalWeeklyTradeCount",
    "lastUpdateDate",
)
"""The committed weekly files' header, in order: the landing file's."""

TOKEN: Final = TokenEndpoint(
    url_setting="finra_token_url",
    client_id_setting="finra_api_client_id",
    client_secret_setting="finra_api_client_secret",  # noqa: S106 - a setting's name
)


def _body(summary_type: str, partition: Partition, limit: int, offset: int) -> Mapping[str, Any]:
    """One page's request: the week, the tier and the summary type, equal."""
    filters = {
        "weekStartDate": partition.start.isoformat(),
        "tierIdentifier": partition.key2 or "",
        "summaryTypeCode": summary_type,
    }
    return {
        "limit": limit,
        "offset": offset,
        "compareFilters": [
            {"compareType": "equal", "fieldName": name, "fieldValue": value}
            for name, value in filters.items()
        ],
    }


def weekly_source(summary_type: str, landing: str) -> RemoteSource:
    """The weekly summary of one summary type, landing at `landing` (tokens: `{key2}`,
    `{week:%Y%m%d}`)."""
    return RemoteSource(
        name="finra_api",
        base_setting="source_finra_api",
        landing=landing,
        query=PagedQuery(
            path="/data/group/otcMarket/name/weeklySummary",
            body=functools.partial(_body, summary_type),
            fields=FIELDS,
        ),
        token=TOKEN,
        probe="/data/group/otcMarket/name/weeklySummary",
    )
