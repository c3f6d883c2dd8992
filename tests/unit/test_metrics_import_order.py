"""Importing the app (its catalog, every domain and the engine) does not import
prometheus-client: the worker pool's supervisor sets PROMETHEUS_MULTIPROC_DIR first,
and the client fixes its mode when it is first imported. A module that made its
metrics at import would leave the pool's /metrics without the children's counts."""

from __future__ import annotations

import subprocess
import sys


def test_the_catalog_imports_no_prometheus_client() -> None:
    code = "import sys, app.catalog, app.cli; print('prometheus_client' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False", done.stderr
