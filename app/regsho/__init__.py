"""FINRA Reg SHO daily short sale volume: per symbol, day and reporting facility.

`pipelines` (regsho_ingest, regsho_compute) -> `connector` (file -> staged lines,
its trailer checked) -> `normalize` (lines -> regsho_daily_volume, one
transaction per (day, market)) -> `short_volume` (the derived short_volume_daily:
the facility files summed, CNMS reconciled); `reads` holds the analytics SQL
the API, the CLI and the page share.
"""

from app.domains import Domain

__all__ = ["DOMAIN"]

DOMAIN = Domain(
    name="regsho",
    package=__name__,
    description="FINRA Reg SHO daily short sale volume: short ratio per symbol and day "
    "(FINRA-reported volume only; not short interest).",
    migrations=range(30, 40),
    nav=(("Reg SHO", "/ui/regsho"),),
)
