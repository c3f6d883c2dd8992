"""The long-running commands: `spine up`, `spine api`, `spine worker start`, `spine shell`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import click
import uvicorn

from app import db
from app.config import Settings, get_settings, project_root
from app.migrations import apply_pending
from app.web.head_limit import PROTOCOL as BOUNDED_HEAD_PROTOCOL

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
    root = project_root()
    path = Path(procfile) if Path(procfile).is_file() or root is None else root / procfile
    if not path.is_file():
        raise click.ClickException(f"{procfile} not found: run `spine up` from the project root")
    check_port_free(settings.api_host, settings.api_port)
    url = db.database_url(settings)  # the embedded server stops when this command's last child ends
    with db.connect(url) as conn:
        applied = [*db.migrated_on_start(settings), *apply_pending(conn)]
    click.echo(f"database ready ({len(applied)} migration(s) applied)")
    base = f"http://{settings.api_host}:{settings.api_port}"
    click.echo(f"API:  {base}/api/v1   docs: {base}/schema   (Ctrl-C stops everything)")
    # Procfile lines run through sh: put this interpreter's `spine` first on PATH. Each
    # process reads `.env` itself (environment first), so honcho is given an empty one.
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SPINE_API_HOST": settings.api_host,  # the Procfile's web line reads them
        "SPINE_API_PORT": str(settings.api_port),
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
    }
    cmd = [sys.executable, "-m", "honcho", "start", "-f", str(path), "-e", os.devnull]
    cmd += ["-d", str(path.resolve().parent), "-p", str(settings.api_port)]
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
    sys.exit(0 if stop_requested and code in _HONCHO_SIGNAL_CODES else code)


def check_port_free(host: str, port: int) -> None:
    """One line, before anything starts, when the API's address is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.ClickException(f"SPINE_API_HOST {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise click.ClickException(
                f"port {port} on {host} is in use ({exc.strerror}): stop what listens there "
                "(another `spine up`?) or set SPINE_API_PORT"
            ) from None


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
@click.option(
    "--backend",
    type=click.Choice(["local", "celery"]),
    default=None,
    help="local: the worker pool; celery: a Celery worker node (default SPINE_BACKEND).",
)
def worker_start(max_concurrent: int | None, backend: str | None) -> None:
    """Run the worker pool (or a Celery worker node) until SIGTERM/SIGINT (twice: at once)."""
    settings = get_settings()
    url = db.database_url(settings)  # resolves (or starts) the embedded server; opens no connection
    if (backend or settings.backend) == "celery":
        sys.exit(_celery_node(settings, url, max_concurrent or settings.max_concurrent))
    from worker.supervisor import Supervisor

    sys.exit(Supervisor(settings, url, max_concurrent).run())


def _celery_node(settings: Settings, url: str, concurrency: int) -> int:
    """A Celery worker node: prefork with `concurrency` children (one included)."""
    try:
        from worker.celery_node import main
    except ImportError as exc:
        raise click.ClickException(
            f"the Celery backend needs the celery extra: pip install 'market-spine[celery]' ({exc})"
        ) from None
    from app.catalog import default_registry
    from app.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    return main(settings, url, default_registry(), concurrency)


@click.command("api")
@click.option("--host", default=None, help="Default SPINE_API_HOST.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default SPINE_API_PORT.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Default SPINE_API_WORKERS."
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the REST API with uvicorn."""
    settings = get_settings()
    if settings.api_public and not settings.api_token:
        raise click.ClickException(
            "SPINE_API_PUBLIC=1 exposes the API beyond this host: set SPINE_API_TOKEN "
            "(refusing to serve mutating calls to anyone who can reach it)"
        )
    check_port_free(host or settings.api_host, port or settings.api_port)
    # Fail fast before serving; the embedded server is started (and migrated) here if needed.
    db.database_url(settings)
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
    config = uvicorn.Config(
        "app.server:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=processes,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        proxy_headers=True,
        # httptools with a cap on the request line and headers (431 past 64 KiB).
        http=BOUNDED_HEAD_PROTOCOL,
        # What one process holds: uvicorn has no timeout for slow headers or
        # bodies, so a cap on connections (503 beyond it) bounds memory, and
        # idle keep-alives close. Production runs behind a reverse proxy that
        # sets read timeouts (docs/operations.md).
        limit_concurrency=settings.api_max_connections,
        timeout_keep_alive=settings.api_keep_alive,
        # JSON logs: uvicorn's records go through the root handler too, not its own text one.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
    )
    if config.workers > 1:
        uvicorn.run(config.app, **_worker_kwargs(config))
        return
    config.load_app()
    server = _CleanStopServer(config)
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE


class _CleanStopServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, so the process dies by
    the signal (honcho: `web.1 stopped (rc=-15)`) and skips atexit (which stops the embedded
    server). A stop that was asked for is a clean exit here."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()


def _worker_kwargs(config: uvicorn.Config) -> dict[str, Any]:
    return {
        "factory": True,
        "host": config.host,
        "port": config.port,
        "workers": config.workers,
        "log_level": config.log_level,
        "access_log": config.access_log,
        "proxy_headers": True,
        "http": config.http,
        "limit_concurrency": config.limit_concurrency,
        "timeout_keep_alive": config.timeout_keep_alive,
        "log_config": config.log_config,
    }


@click.command("shell")
def shell() -> None:
    """An interactive Python shell with settings, db, the registry, submit and the SQL modules."""
    import code

    from app.catalog import DOMAINS, default_registry
    from app.engine import executions, leases, workers
    from app.engine.backends import make_backend
    from app.engine.submit import submit as engine_submit

    settings, registry = get_settings(), default_registry()
    backend = make_backend(settings)

    async def submit(conn: db.AsyncConn, pipeline: str, params: Any = None, **kw: Any) -> Any:
        """submit() with this shell's registry and settings."""
        kw.setdefault("backend", backend)
        return await engine_submit(conn, registry, settings, pipeline, params, **kw)

    namespace: dict[str, Any] = {
        "settings": settings,
        "db": db,
        "registry": registry,
        "submit": submit,
        "executions": executions,
        "leases": leases,
        "workers": workers,
        "asyncio": asyncio,
        # Each data domain's reads under its name (`otc`, `finra`).
        **{d.name: reads for d in DOMAINS if (reads := d.part("reads")) is not None},
    }
    banner = (
        "Market Spine shell. Preloaded: " + ", ".join(sorted(namespace)) + "\n"
        "e.g. (IPython) conn = await db.aconnect(db.database_url(settings)); "
        "await submit(conn, 'noop')"
    )
    try:
        from IPython import start_ipython

        click.echo(banner)
        start_ipython(argv=["--no-banner", "--autoawait=asyncio"], user_ns=namespace)
    except ImportError:
        namespace["__name__"] = "__console__"
        code.interact(banner=banner + "\n(use asyncio.run(...) for coroutines)", local=namespace)
