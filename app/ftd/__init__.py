"""SEC fails-to-deliver: per settlement date, each security's shares that failed to deliver.

`pipelines` (sec_ftd_ingest) -> `connector` (file -> staged lines) ->
`normalize` (trailers checked, lines judged, the half-month replaced, in one
transaction); `reads` holds the analytics SQL the API, the CLI and the page share.
"""

from app.domains import Domain

__all__ = ["DOMAIN"]

DOMAIN = Domain(
    name="ftd",
    package=__name__,
    description="SEC fails-to-deliver half-months: a date's fails by value, runs, persistence.",
    migrations=range(40, 50),
    nav=(("SEC fails", "/ui/ftd"),),
)
