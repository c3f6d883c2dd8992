"""The OTC trades domain: ingest a trades file, normalize it, compute exact daily metrics.

- `pipelines`: `otc_ingest` and `otc_compute_metrics` (PIPELINES lists them);
- `connector`: input files, their fast check and the COPY of raw lines;
- `loads`: one row per loaded file; `normalize`: raw lines -> trades
  (`normalize_steps` holds its statements); `metrics`: daily metrics;
- `reads`: queries for the API and the CLI; `generator`: synthetic files.
"""

from app.domains import Domain

__all__ = ["DOMAIN"]

DOMAIN = Domain(
    name="otc",
    package=__name__,
    description="OTC trades and daily metrics.",
    migrations=range(10, 20),
    nav=(("Market data", "/ui/market"), ("OTC loads", "/ui/loads")),
)
