"""Settings: defaults, coercion, and one clear line for a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_settings, project_root, setting_docs


def test_defaults() -> None:
    s = load_settings({})
    assert s.database_url is None
    assert s.poll_interval == 0.5
    assert s.data_dir == Path("./data")
    assert s.backend == "local"


def test_values_are_coerced_from_strings() -> None:
    s = load_settings(
        {"SPINE_MAX_CONCURRENT": "8", "SPINE_POLL_INTERVAL": "0.1", "SPINE_API_TOKEN_READS": "yes"}
    )
    assert (s.max_concurrent, s.poll_interval, s.api_token_reads) == (8, 0.1, True)
    paths = load_settings({"SPINE_DATA_DIR": "/srv/in", "SPINE_STATE_DIR": "rel/state"})
    assert (paths.data_dir, paths.state_dir) == (Path("/srv/in"), Path("rel/state"))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SPINE_MAX_CONCURRENT": "lots"}, "SPINE_MAX_CONCURRENT"),
        ({"SPINE_MAX_CONCURRENT": "0"}, "SPINE_MAX_CONCURRENT"),
        ({"SPINE_POLL_INTERVAL": "-1"}, "SPINE_POLL_INTERVAL"),
        ({"SPINE_BACKEND": "dask"}, "SPINE_BACKEND"),
        ({"SPINE_LOG_LEVEL": "LOUD"}, "SPINE_LOG_LEVEL"),
        ({"SPINE_API_TOKEN_READS": "maybe"}, "SPINE_API_TOKEN_READS"),
    ],
)
def test_bad_value_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    message = str(info.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_dotenv_fills_gaps_but_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("SPINE_MAX_CONCURRENT=7\nSPINE_MAX_ATTEMPTS=9\n")
    monkeypatch.setenv("SPINE_MAX_ATTEMPTS", "2")
    monkeypatch.delenv("SPINE_MAX_CONCURRENT", raising=False)
    s = load_settings(dotenv=dotenv)
    assert (s.max_concurrent, s.max_attempts) == (7, 2)


def test_env_example_documents_every_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for variable, _default, meaning in setting_docs():
        assert f"{variable}=" in example, variable
        assert meaning, f"{variable} has no description"


def test_bad_setting_stops_the_cli_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from app.cli import main
    from app.config import get_settings

    monkeypatch.setenv("SPINE_MAX_CONCURRENT", "many")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["db", "status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "SPINE_MAX_CONCURRENT" in result.output
    assert "Traceback" not in result.output


def test_unknown_market_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^SPINE_MARKET_TZ: 'Mars/Olympus' is not an IANA"):
        load_settings({"SPINE_MARKET_TZ": "Mars/Olympus"})


def test_state_and_data_are_the_project_roots_whatever_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("SPINE_STATE_DIR", "SPINE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    seen = set()
    for cwd in (root, root / "app" / "otc", root / "tests" / "unit"):
        monkeypatch.chdir(cwd)
        assert project_root() == root
        s = load_settings()
        seen.add((s.state_dir, s.data_dir))
    assert seen == {(root / ".spine", root / "data")}


def test_outside_a_project_state_goes_to_the_users_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPINE_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert project_root() is None
    assert load_settings().state_dir == tmp_path / "xdg" / "market-spine"
    monkeypatch.setenv("SPINE_STATE_DIR", "/srv/spine")
    assert load_settings().state_dir == Path("/srv/spine")


@pytest.mark.parametrize("url", ["notaurl", "postgresql://h:5432/db?sslmode", "a=b=c"])
def test_database_url_that_is_not_one_names_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: not a PostgreSQL connection string"):
        load_settings({"DATABASE_URL": url})


def test_good_database_urls_pass() -> None:
    for url in ("postgresql://u:p@h:5432/db", "host=/tmp dbname=x"):
        assert load_settings({"DATABASE_URL": url}).database_url == url
