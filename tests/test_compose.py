"""config/compose.yaml: PostgreSQL, a one-shot migration and two daemons (no Docker engine runs
here, so the file itself is checked, and its environment is read by ingest's own settings)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
import yaml

from ingest.cli import cli
from ingest.config import ENV_PREFIX, SECTIONS, load_settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "config/compose.yaml"
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
# Read by the CLI itself rather than by the settings (`ingest --help` names them).
CLI_VARIABLES = {f"{ENV_PREFIX}CONFIG", f"{ENV_PREFIX}LOG_FORMAT"}
SETTING_VARIABLES = {
    f"{ENV_PREFIX}{section}_{key}".upper(): (section, key)
    for section, model in SECTIONS.items()
    for key in model.model_fields
}


def interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` / ``${NAME-default}`` with nothing set: the defaults."""
    plain = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", value)
    assert "${" not in plain and not re.search(r"\$\w", plain), f"{value!r} needs a variable set"
    return plain


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, as a mapping whichever form the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: interpolate(str(value)) for name, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    """The arguments given to the image's ``ingest --log-format json`` entrypoint."""
    cmd = service.get("command", ["daemon"])  # the image's CMD
    return cmd.split() if isinstance(cmd, str) else list(cmd)


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def daemons() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in SERVICES.items()
        if "build" in service and command(service) == ["daemon"]
    }


def postgres_service() -> tuple[str, dict[str, Any]]:
    (found,) = [
        (n, s) for n, s in SERVICES.items() if str(s.get("image", "")).startswith("postgres:")
    ]
    return found


def condition(service: dict[str, Any], name: str) -> str | None:
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):
        return "service_started" if name in depends else None
    return (depends.get(name) or {}).get("condition")


def test_postgres_16_keeps_its_data_in_a_named_volume() -> None:
    _, postgres = postgres_service()
    assert postgres["image"] == "postgres:16"
    (mount,) = postgres["volumes"]
    volume, target = mount.split(":", 1)
    assert target == "/var/lib/postgresql/data"
    assert volume in COMPOSE["volumes"]  # named, not a host path


def test_postgres_healthcheck_asks_pg_isready_for_the_archive_database() -> None:
    _, postgres = postgres_service()
    env = environment(postgres)
    test = postgres["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}
    line = " ".join(test[1:])
    assert line.startswith("pg_isready")
    assert f"-U {env['POSTGRES_USER']}" in line and f"-d {env['POSTGRES_DB']}" in line


def test_two_daemon_replicas() -> None:
    assert sum(replicas(service) for service in daemons().values()) == 2


def test_a_one_shot_migration_runs_before_the_daemons() -> None:
    postgres, _ = postgres_service()
    (migrate,) = [s for s in SERVICES.values() if command(s) == ["db", "upgrade"]]
    assert migrate.get("restart", "no") == "no" and replicas(migrate) == 1
    assert condition(migrate, postgres) == "service_healthy"
    migrate_name = next(n for n, s in SERVICES.items() if s is migrate)
    for service in daemons().values():
        assert condition(service, postgres) == "service_healthy"
        assert condition(service, migrate_name) == "service_completed_successfully"


def test_the_commands_are_real_cli_commands() -> None:
    for service in (s for s in SERVICES.values() if "build" in s):
        group: click.Command = cli
        ctx = click.Context(cli)
        for word in command(service):
            assert isinstance(group, click.Group), f"{command(service)}: {word!r}"
            found = group.get_command(ctx, word)
            assert found is not None, f"{command(service)}: no command {word!r}"
            group = found
        assert not isinstance(group, click.Group), f"{command(service)} is not a whole command"


def test_ingest_services_build_this_repository_and_share_the_image() -> None:
    built = [s for s in SERVICES.values() if "build" in s]
    assert len(built) >= 2  # the migration and the daemons
    for service in built:
        context = (COMPOSE_FILE.parent / service["build"]["context"]).resolve()
        assert context == REPO
        assert (context / service["build"].get("dockerfile", "Dockerfile")).is_file()
    assert len({s["image"] for s in built}) == 1
    assert len({tuple(sorted(environment(s).items())) for s in built}) == 1


def test_database_url_names_the_postgres_service_and_its_credentials() -> None:
    name, postgres = postgres_service()
    pg = environment(postgres)
    for service in (s for s in SERVICES.values() if "build" in s):
        url = sa.make_url(environment(service)["INGEST_DATABASE_URL"])
        assert url.drivername == "postgresql+psycopg"
        assert url.host == name and (url.port or 5432) == 5432
        assert url.username == pg["POSTGRES_USER"]
        assert url.password == pg["POSTGRES_PASSWORD"]
        assert url.database == pg["POSTGRES_DB"]


def config_mount(service: dict[str, Any]) -> tuple[Path, str]:
    """(file on this machine, path in the container) of the mounted config."""
    image_config = re.search(r"INGEST_CONFIG=(\S+)", DOCKERFILE)
    assert image_config is not None
    target = environment(service).get("INGEST_CONFIG", image_config[1])
    for mount in service.get("volumes", []):
        source, _, rest = mount.partition(":")
        path, _, mode = rest.partition(":")
        if path == target:
            assert mode == "ro", f"{mount}: the config is not mounted read-only"
            return (COMPOSE_FILE.parent / source).resolve(), target
    raise AssertionError(f"no config mounted at {target}")


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "build" in s))
def test_every_ingest_variable_is_a_setting_and_validates(name: str) -> None:
    service = SERVICES[name]
    env = environment(service)
    ours = {k for k in env if k.startswith(ENV_PREFIX)}
    unknown = ours - set(SETTING_VARIABLES) - CLI_VARIABLES
    assert not unknown, f"not ingest settings (ingest would ignore them): {sorted(unknown)}"
    source, _ = config_mount(service)
    assert source.is_file()
    # The container's view: the mounted file, then the environment over it.
    settings = load_settings(source, environ={k: v for k, v in env.items() if k in ours})
    for variable, value in env.items():
        if variable in SETTING_VARIABLES:
            section, key = SETTING_VARIABLES[variable]
            assert str(getattr(getattr(settings, section), key)) == value
    assert settings.database.url.startswith("postgresql+psycopg://")


def test_daemons_serve_healthz_to_the_network_on_the_images_port() -> None:
    (port,) = re.findall(r"127\.0\.0\.1:(\d+)/healthz", DOCKERFILE)
    for service in daemons().values():
        source, _ = config_mount(service)
        settings = load_settings(source, environ=environment(service))
        assert settings.daemon.listen == f"0.0.0.0:{port}"
        assert port in [str(p) for p in service.get("expose", [])]


def test_daemons_get_time_to_stop_cleanly() -> None:
    for service in daemons().values():
        source, _ = config_mount(service)
        grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
        assert grace is not None
        shutdown = load_settings(source, environ=environment(service)).daemon.shutdown_timeout
        assert int(grace[1]) > shutdown
