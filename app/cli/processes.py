"""The long-running commands: `spine up`, `spine api`, `spine worker start`, `spine shell`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from app import db, embedded
from app.config import Settings, get_settings
from app.migrations import apply_pending

__all__ = ["api", "shell", "up", "worker_group"]

# honcho answers a signal with 128+signal; a stop we were asked for is a clean exit.
_HONCHO_SIGNAL_CODES = {0, 128 + signal.SIGINT, 128 + signal.SIGTERM}


@click.command("up")
@click.option("--procfile", default="Procfile", show_default=True, type=click.Path(dir_okay=False))
def up(procfile: str) -> None:
    """Start everything: database (embedded unless DATABASE_URL), migrations, API and workers.

    Runs `honcho start` on the Procfile; Ctrl-C stops every process, and the
    embedded database too when this command started it.
    """
    settings = get_settings()
    if not Path(procfile).is_file():
        raise click.ClickException(f"{procfile} not found: run `spine up` from the project root")
    started_db = not settings.database_url and not embedded.is_running(settings.state_dir)
    url = db.database_url(settings)
    with db.connect(url) as conn:
        applied = apply_pending(conn)
    click.echo(f"database ready ({len(applied)} migration(s) applied)")
    base = f"http://{settings.api_host}:{settings.api_port}"
    click.echo(f"API:  {base}/api/v1   docs: {base}/schema   (Ctrl-C stops everything)")
    # Procfile lines run through sh: put this interpreter's `spine` first on PATH. Each
    # process reads `.env` itself (environment first), so honcho is given an empty one.
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SPINE_API_HOST": settings.api_host,  # the Procfile's web line reads it
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
    }
    cmd = [sys.executable, "-m", "honcho", "start", "-f", procfile, "-e", os.devnull]
    cmd += ["-p", str(settings.api_port)]
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter and arguments
    stop_requested = False

    def forward(signum: int, _frame: object) -> None:
        # honcho may have had Ctrl-C from the terminal already; a repeat is harmless to it.
        nonlocal stop_requested
        stop_requested = True
        proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    code = proc.wait()
    if started_db:
        embedded.stop(settings.state_dir)
        click.echo("embedded PostgreSQL stopped")
    sys.exit(0 if stop_requested and code in _HONCHO_SIGNAL_CODES else code)


@click.group("worker")
def worker_group() -> None:
    """The worker pool."""


@worker_group.command("start")
@click.option(
    "--max-concurrent",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default SPINE_MAX_CONCURRENT).",
)
def worker_start(max_concurrent: int | None) -> None:
    """Run the worker pool until SIGTERM/SIGINT (twice: at once)."""
    from worker.supervisor import Supervisor

    settings = get_settings()
    url = db.database_url(settings)  # resolves (or starts) the embedded server; opens no connection
    sys.exit(Supervisor(settings, url, max_concurrent).run())


@click.command("api")
@click.option("--host", default=None, help="Default SPINE_API_HOST.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default SPINE_API_PORT.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Default SPINE_API_WORKERS."
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the REST API with uvicorn."""
    settings = get_settings()
    db.database_url(settings)  # fail fast (and start the embedded server) before serving
    processes = workers or settings.api_workers
    metrics_dir = None
    if processes > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several uvicorn processes: /metrics sums them (prometheus-client multiprocess mode).
        metrics_dir = tempfile.mkdtemp(prefix="spine-api-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _serve(settings, host, port, processes)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(settings: Settings, host: str | None, port: int | None, processes: int) -> None:
    import uvicorn

    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=processes,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        proxy_headers=True,
        # JSON logs: uvicorn's records go through the root handler too, not its own text one.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )


@click.command("shell")
def shell() -> None:
    """An interactive Python shell with settings, db, the registry, submit and the SQL modules."""
    import code

    from app.catalog import default_registry
    from app.engine import executions, leases, workers
    from app.engine.submit import submit as engine_submit
    from app.otc import reads

    settings, registry = get_settings(), default_registry()

    async def submit(conn: db.AsyncConn, pipeline: str, params: Any = None, **kw: Any) -> Any:
        """submit() with this shell's registry and settings."""
        return await engine_submit(conn, registry, settings, pipeline, params, **kw)

    namespace: dict[str, Any] = {
        "settings": settings,
        "db": db,
        "registry": registry,
        "submit": submit,
        "executions": executions,
        "leases": leases,
        "workers": workers,
        "otc": reads,
        "asyncio": asyncio,
    }
    banner = (
        "Market Spine shell. Preloaded: " + ", ".join(sorted(namespace)) + "\n"
        "e.g. (IPython) conn = await db.aconnect(); await submit(conn, 'noop')"
    )
    try:
        from IPython import start_ipython

        click.echo(banner)
        start_ipython(argv=["--no-banner", "--autoawait=asyncio"], user_ns=namespace)
    except ImportError:
        namespace["__name__"] = "__console__"
        code.interact(banner=banner + "\n(use asyncio.run(...) for coroutines)", local=namespace)
