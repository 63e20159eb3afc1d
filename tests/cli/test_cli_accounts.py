"""The foundation CLI against real SQLite and PostgreSQL: users, accounts, keys, bad input."""

from __future__ import annotations

import base64
import json

from sqlalchemy import Engine, func, select, text

from tracker.models import Account, AuditLog, User

KEY = "sk-admin-abcdefghijklmnopqrstuvwxyz1234"


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_accounts_add_stores_key_encrypted_and_lists_last4(cli, committed_db):
    result = cli(
        "accounts",
        "add",
        "--provider",
        "openai",
        "--name",
        "prod",
        "--api-key-stdin",
        "--monthly-budget",
        "1250.50",
        "--token-quota",
        "5000000000",
        stdin=KEY + "\n",
    )
    assert result.code == 0, result.err
    assert KEY not in result.out and "…1234" in result.out
    with committed_db.connect() as conn:
        raw = conn.execute(text("SELECT credential_encrypted, credential_last4 FROM accounts"))
        stored, last4 = raw.one()
    assert KEY not in stored and KEY[4:20] not in stored
    assert stored.startswith("v1.") and last4 == "1234"

    listed = cli("accounts", "list", "--json")
    assert listed.code == 0
    [row] = json.loads(listed.out)
    assert row["name"] == "prod" and row["provider"] == "openai" and row["key"] == "…1234"
    assert row["monthly_budget"] == "1250.500000"
    assert KEY not in listed.out
    table = cli("accounts", "list")
    assert "prod" in table.out and "…1234" in table.out and KEY not in table.out


def test_bad_account_input_changes_nothing(cli, committed_db):
    assert (
        cli(
            "accounts", "add", "--provider", "openai", "--name", "a", "--api-key-stdin", stdin=KEY
        ).code
        == 0
    )
    cases = [
        (["--provider", "openai", "--name", "a"], KEY, "already exists"),
        (["--provider", "openai", "--name", "b"], "\n", "no API key"),
        (["--provider", "openai", "--name", "b"], "sk-a b c d e f", "whitespace"),
        (["--provider", "nope", "--name", "b"], KEY, "invalid choice"),
        (["--provider", "github_copilot", "--name", "b"], KEY, "--organization"),
        (["--provider", "openai", "--name", "b", "--monthly-budget", "lots"], KEY, "number"),
        (["--provider", "openai", "--name", "b", "--base-url", "ftp://x"], KEY, "https://"),
    ]
    for args, stdin, expected in cases:
        result = cli("accounts", "add", *args, "--api-key-stdin", stdin=stdin)
        assert result.code != 0, args
        assert expected in result.err, (args, result.err)
        assert len(result.err.strip().splitlines()) == 1, result.err
    assert count(committed_db, Account) == 1


def test_key_never_taken_from_argv(cli):
    result = cli("accounts", "add", "--provider", "openai", "--name", "x", "--api-key", KEY)
    assert result.code == 2 and "unrecognized arguments" in result.err


def test_accounts_remove_and_unknown_name(cli, committed_db):
    cli(
        "accounts",
        "add",
        "--provider",
        "deepseek",
        "--name",
        "ds",
        "--api-key-stdin",
        stdin="sk-deepseek-0000000000009999",
    )
    assert cli("accounts", "remove", "nope").code == 1
    removed = cli("accounts", "remove", "ds")
    assert removed.code == 0 and count(committed_db, Account) == 0
    with committed_db.connect() as conn:
        actions = conn.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars().all()
    assert actions == ["account.add", "account.remove"]


def test_users_add_hashes_password_and_refuses_duplicates(cli, committed_db):
    ok = cli(
        "users",
        "add",
        "alice",
        "--email",
        "Alice@Example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert ok.code == 0, ok.err
    with committed_db.connect() as conn:
        user = conn.execute(select(User.email, User.password_hash, User.role)).one()
    assert user.email == "alice@example.com" and user.role == "admin"
    assert user.password_hash.startswith("$2") and "correct horse" not in user.password_hash
    again = cli(
        "users",
        "add",
        "alice",
        "--email",
        "b@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="another password",
    )
    assert again.code == 1 and "already exists" in again.err
    short = cli(
        "users",
        "add",
        "bob",
        "--email",
        "b@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="short",
    )
    assert short.code == 1 and "at least 12" in short.err
    too_long = cli(
        "users",
        "add",
        "bob",
        "--email",
        "b@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="x" * 73,
    )
    assert too_long.code == 1 and "72 bytes" in too_long.err
    bad_role = cli(
        "users",
        "add",
        "bob",
        "--email",
        "b@example.com",
        "--role",
        "root",
        "--password-stdin",
        stdin="long enough password",
    )
    assert bad_role.code == 2
    assert count(committed_db, User) == 1


def test_keys_rotate_reencrypts_and_old_key_alone_fails(cli, committed_db, monkeypatch):
    cli("accounts", "add", "--provider", "openai", "--name", "a", "--api-key-stdin", stdin=KEY)
    cli(
        "accounts",
        "add",
        "--provider",
        "anthropic",
        "--name",
        "b",
        "--api-key-stdin",
        stdin="sk-ant-admin01-zzzzzzzzzzzzzzzz5678",
    )
    with committed_db.connect() as conn:
        before = dict(conn.execute(text("SELECT name, credential_encrypted FROM accounts")).all())

    old_key = base64.urlsafe_b64encode(b"k" * 32).decode()
    new_key = base64.urlsafe_b64encode(b"n" * 32).decode()
    monkeypatch.setenv("ENCRYPTION_KEY", new_key)
    # Without the previous key, rotation must fail and change nothing.
    failed = cli("keys", "rotate")
    assert (
        failed.code == 1 and "another key" in failed.err and "ENCRYPTION_KEY_PREVIOUS" in failed.err
    )
    monkeypatch.setenv("ENCRYPTION_KEY_PREVIOUS", old_key)
    rotated = cli("keys", "rotate")
    assert rotated.code == 0 and "2 credential(s)" in rotated.out
    with committed_db.connect() as conn:
        after = dict(conn.execute(text("SELECT name, credential_encrypted FROM accounts")).all())
    assert all(after[n] != before[n] for n in before)

    from tracker.core.crypto import CredentialCipher

    new_only = CredentialCipher(base64.urlsafe_b64decode(new_key))
    assert new_only.decrypt(after["a"]).reveal() == KEY
    assert new_only.decrypt(after["b"]).reveal().endswith("5678")
    assert cli("keys", "rotate").out.startswith("re-encrypted 0")


def test_database_errors_are_one_line(cli, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    result = cli("accounts", "list")
    assert result.code == 1 and "cannot connect to the database" in result.err
    assert len(result.err.strip().splitlines()) == 1
    monkeypatch.setenv("DATABASE_URL", "not a url")
    result = cli("db", "upgrade")
    assert result.code == 1 and "DATABASE_URL is not a valid" in result.err


def test_commands_on_unmigrated_database_say_to_upgrade(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = cli("accounts", "list")
    assert result.code == 1 and "db upgrade" in result.err
    assert cli("db", "upgrade").code == 0
    assert cli("accounts", "list").code == 0
    assert cli("db", "current").code == 0


def test_unreachable_provider_is_one_line_even_after_retries(cli, app_env):
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    added = cli(
        "accounts", "add", "--provider", "openai", "--name", "p", "--api-key-stdin",
        "--base-url", f"http://127.0.0.1:{port}", stdin=KEY,
    )  # fmt: skip
    assert added.code == 0
    env = {**os.environ, **app_env, "HTTP_MAX_RETRIES": "2", "HTTP_BACKOFF_FACTOR": "0.01"}
    result = subprocess.run(
        [sys.executable, "-m", "tracker", "accounts", "test", "p"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: p: cannot connect to openai at http://127.0.0.1:{port}; check the network "
        "and the account's base URL"
    ]


def test_users_links_are_single_use_and_printed_once(cli):
    first = cli("users", "setup-link")
    assert first.code == 0, first.err
    link = first.out.strip().splitlines()[-1]
    assert link.startswith("http://localhost:8501/?setup=")
    # A second setup link replaces the first.
    second = cli("users", "setup-link").out.strip().splitlines()[-1]
    assert second != link
    assert (
        cli(
            "users",
            "add",
            "root",
            "--email",
            "r@example.com",
            "--role",
            "admin",
            "--password-stdin",
            stdin="a long enough secret",
        ).code
        == 0
    )
    refused = cli("users", "setup-link")
    assert refused.code == 1 and "an admin already exists" in refused.err
    invite = cli("users", "invite", "New@Example.com", "--role", "finance")
    assert invite.code == 0 and "?invite=" in invite.out
    reset = cli("users", "reset-link", "root")
    assert reset.code == 0 and "?reset=" in reset.out
    missing = cli("users", "reset-link", "nobody")
    assert missing.code == 1 and "no user named 'nobody'" in missing.err
