"""Importing the settings writes nothing; ``manage.py initdata`` makes the data dir's folders and keys, once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KEY_VARIABLES = ("SECRET_KEY", "WEBPOP_ENCRYPTION_KEYS")
LOAD = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(KEY_VARIABLES)}
    env.update(WEBPOP_DATA_DIR=str(data_dir), DATABASE_URL="", REDIS_URL="", DJANGO_SETTINGS_MODULE="webpop.settings")
    env.pop("DATABASE_URL")  # the embedded default: SQLite in the data dir
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_without_keys_the_settings_refuse_to_load_and_name_the_command(tmp_path):
    data_dir = tmp_path / "data"
    failed = _run([sys.executable, "-c", LOAD], _env(data_dir))
    assert failed.returncode != 0
    assert "ImproperlyConfigured" in failed.stderr
    assert "SECRET_KEY and WEBPOP_ENCRYPTION_KEYS" in failed.stderr and "python manage.py initdata" in failed.stderr
    assert not data_dir.exists()  # the import created nothing
    check = _run([sys.executable, "manage.py", "check"], _env(data_dir))
    assert check.returncode != 0 and "manage.py initdata" in check.stderr


def test_keys_from_the_environment_need_no_files_and_the_import_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    env = _env(data_dir, SECRET_KEY="from-env", WEBPOP_ENCRYPTION_KEYS="aW52YWxpZA==")
    loaded = _run([sys.executable, "-c", LOAD], env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["from-env"]
    assert not data_dir.exists()
    made = _run([sys.executable, "manage.py", "initdata"], env)
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in data_dir.iterdir()) == ["broker", "staticfiles"]  # no key files


def test_initdata_creates_folders_and_private_keys_once(tmp_path):
    data_dir = tmp_path / "data"
    env = _env(data_dir)
    first = _run([sys.executable, "manage.py", "initdata"], env)
    assert first.returncode == 0, first.stderr
    assert f"Created folder {data_dir}\n" in first.stdout
    assert f"Created key file {data_dir / 'secret_key'}" in first.stdout
    assert f"Created key file {data_dir / 'encryption_keys'}" in first.stdout
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("secret_key", "encryption_keys"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    for folder in ("staticfiles", "broker/queue", "broker/processed", "broker/control"):
        assert (data_dir / folder).is_dir(), folder
    secret = (data_dir / "secret_key").read_text().strip()

    again = _run([sys.executable, "manage.py", "initdata"], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{data_dir} has its folders and keys; nothing created."
    assert (data_dir / "secret_key").read_text().strip() == secret  # never replaced

    loaded = _run([sys.executable, "-c", LOAD], env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [secret]
