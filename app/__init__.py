"""Market Spine: OTC trade data pipelines on a PostgreSQL job queue."""

__version__ = "0.1.0"
