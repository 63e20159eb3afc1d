"""docker-compose.yml and Dockerfile: parsed and checked, and each service's command run
directly against a real PostgreSQL (no Docker engine runs on our machines)."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect, select

from tracker.core.db import make_engine
from tracker.models import Service
from tracker.providers.registry import PROVIDERS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SECRETS = {
    "POSTGRES_PASSWORD": "pw_for_tests",
    "ENCRYPTION_KEY": base64.urlsafe_b64encode(b"c" * 32).decode(),
    "SECRET_KEY": "compose-test-secret-key-0123456789-abcdefgh",
}
VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == "?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == "-" else ""

    return VAR.sub(sub, value)


def service_env(name: str, env: dict[str, str]) -> dict[str, str]:
    return {
        k: interpolate(str(v), env) for k, v in COMPOSE["services"][name]["environment"].items()
    }


def test_services_and_their_wiring():
    services = COMPOSE["services"]
    assert set(services) == {"db", "migrate", "app", "worker"}
    db = services["db"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in db["volumes"]) and "pgdata" in COMPOSE["volumes"]
    assert services["migrate"]["command"] == ["python", "-m", "tracker", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("app", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert services[name]["build"] == "."
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert services["app"]["command"][:3] == ["streamlit", "run", "app.py"]
    # Plain HTTP is published on this host only; a TLS proxy faces the network.
    assert services["app"]["ports"] == ["127.0.0.1:8501:8501"]
    environment = services["app"]["environment"]
    assert {"PUBLIC_URL", "SESSION_IDLE_MINUTES", "OIDC_METADATA_URL"} <= set(environment)


def test_streamlit_hides_the_deploy_button_and_developer_menu():
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'toolbarMode = "viewer"' in config


def test_required_secrets_fail_fast_when_missing():
    for name in ("migrate", "app", "worker"):
        raw = COMPOSE["services"][name]["environment"]
        assert raw["TRACKER_ENV"] == "production"
        for secret in ("ENCRYPTION_KEY", "SECRET_KEY"):
            assert raw[secret].startswith("${" + secret + ":?")
        for secret in SECRETS:
            env = {k: v for k, v in SECRETS.items() if k != secret}
            with pytest.raises(ValueError, match=secret):
                service_env(name, env)


def test_dockerfile_installs_pinned_requirements_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    assert re.search(r"^USER tracker$", dockerfile, re.M)
    for path in ("app.py", "worker.py", "pages", "tracker", ".streamlit"):
        assert path in dockerfile and (ROOT / path).exists()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert "==" in line, f"unpinned requirement: {line}"


def direct_command(command: list[str]) -> list[str]:
    """The compose command as run here: this interpreter instead of the image's."""
    if command[0] == "python":
        return [sys.executable, *command[1:]]
    if command[0] == "streamlit":
        return [sys.executable, "-m", "streamlit", *command[1:]]
    raise AssertionError(f"unexpected command {command}")


@pytest.fixture
def compose_env(pg_databases, tmp_path) -> dict[str, str]:
    env = service_env("migrate", SECRETS)
    env["DATABASE_URL"] = pg_databases.create()  # the `db` host is the local server here
    env.update(PATH=os.environ["PATH"], HOME=str(tmp_path), DATA_DIR=str(tmp_path / "data"))
    return env


def run(command: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        direct_command(command), cwd=ROOT, env=env, capture_output=True, text=True, **kwargs
    )


def test_migrate_then_worker_commands_against_postgres(compose_env):
    services = COMPOSE["services"]
    migrated = run(services["migrate"]["command"], compose_env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    engine = make_engine(compose_env["DATABASE_URL"])
    try:
        assert "usage_records" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            # One services row per registered provider, seeded by the migrations.
            assert {n for (n,) in conn.execute(select(Service.name))} == set(PROVIDERS)
    finally:
        engine.dispose()
    again = run(services["migrate"]["command"], compose_env, timeout=120)
    assert again.returncode == 0, again.stderr
    worker = run([*services["worker"]["command"], "--once"], compose_env, timeout=300)
    assert worker.returncode == 0, worker.stderr


def test_production_refuses_to_start_without_secrets(compose_env):
    env = {k: v for k, v in compose_env.items() if k != "SECRET_KEY"}
    result = run(COMPOSE["services"]["migrate"]["command"], env, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_app_command_serves_health_check(compose_env):
    assert run(COMPOSE["services"]["migrate"]["command"], compose_env, timeout=120).returncode == 0
    port = free_port()
    command = [
        "--server.port=" + str(port) if arg.startswith("--server.port") else arg
        for arg in COMPOSE["services"]["app"]["command"]
    ]
    command = [a.replace("0.0.0.0", "127.0.0.1") for a in command]
    log_path = Path(compose_env["HOME"]) / "app.log"
    log_file = log_path.open("w")
    proc = subprocess.Popen(
        direct_command(command), cwd=ROOT, env=compose_env, stdout=log_file, stderr=log_file
    )
    try:
        deadline, body = time.monotonic() + 60, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health") as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert body == "ok", log_path.read_text()[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log_file.close()
