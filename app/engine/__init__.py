"""The generic PostgreSQL execution engine: it knows pipelines, never a data domain.

- `models`: statuses, lanes, events, channels and rows (the one vocabulary);
- `registry`: pipelines as values; `context`: what a running pipeline gets;
- `submit`: validate, insert, hand to the backend; `run`: run a claimed execution;
- `executions`, `leases`, `workers`: the SQL, by concern;
- `backends`: the OrchestratorBackend protocol and the local pool;
- `builtin`: the `noop` and `sleep` pipelines; `retry`: backoff.
"""
