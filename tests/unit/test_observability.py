"""Worker metrics in one process (no pool) and the JSON log format."""

from __future__ import annotations

import json
import logging
import sys

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.logs import JsonFormatter
from worker import metrics


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_retrying_outcome_counts_a_scheduled_retry() -> None:
    before = value("spine_retries_scheduled_total", pipeline="unit_probe")
    metrics.execution_finished("unit_probe", "retrying", 0.01)
    metrics.execution_finished("unit_probe", "failed", 0.01)
    assert value("spine_retries_scheduled_total", pipeline="unit_probe") == before + 1
    assert value("spine_executions_finished_total", pipeline="unit_probe", outcome="failed") >= 1


def test_rows_by_outcome_are_added() -> None:
    before = value("spine_pipeline_rows_total", pipeline="unit_rows", outcome="inserted")
    metrics.execution_finished("unit_rows", "completed", 0.5, {"inserted": 7, "rejected": 2})
    assert (
        value("spine_pipeline_rows_total", pipeline="unit_rows", outcome="inserted") == before + 7
    )


def test_names_follow_prometheus_conventions() -> None:
    families = {
        f.name: f
        for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())
        if f.name.startswith("spine_")
    }
    assert families["spine_executions_started"].type == "counter"
    assert families["spine_execution_duration_seconds"].type == "histogram"
    for family in families.values():
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_json_lines_carry_context_fields_and_the_traceback() -> None:
    logger = logging.getLogger("spine.test")
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logger.makeRecord(
            "spine.test",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("x",),
            sys.exc_info(),
            extra={"execution_id": "e-1", "pipeline": "noop", "worker_id": "w-1"},
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed x"
    assert entry["level"] == "ERROR"
    assert (entry["execution_id"], entry["pipeline"], entry["worker_id"]) == ("e-1", "noop", "w-1")
    assert "ValueError: bad value" in entry["traceback"]
