"""FINRA OTC Transparency: weekly OTC volume per (symbol, venue), restatements, market share.

`pipelines` (finra_weekly_ingest) -> `connector` (file -> raw lines) ->
`normalize` (raw lines -> finra_weekly_volume, in one transaction);
`reads` holds the analytics SQL the API and the CLI share.
"""

from app.domains import Domain

__all__ = ["DOMAIN"]

DOMAIN = Domain(
    name="finra",
    package=__name__,
    description="FINRA OTC Transparency weeks: venue market share, symbol HHI.",
    migrations=range(20, 30),
    nav=(("FINRA weekly", "/ui/finra"),),
)
