"""Typed helpers that read settings from the environment and fail loudly.

Every value may also come from a file named by ``<NAME>_FILE`` (for secrets
mounted by an orchestrator). A bad value raises ``ImproperlyConfigured`` with
the variable name and what was expected, so a typo never starts a server with
a silently different configuration.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if value is not None and file_name:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both.")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_name}: {exc.strerror}") from exc
    return value


def env_str(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off).")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is above the maximum {maximum}.")
    return number


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return lowered


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_http_url(name: str) -> str:
    """An http(s) URL with a host (no credentials, query or trailing slash), or "" when unset."""
    value = (_raw(name) or "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} has a bad port.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ImproperlyConfigured(f"{name}={value!r} is not an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise ImproperlyConfigured(f"{name}: no credentials in the URL (URLs get logged); they have their own setting.")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def url_with_port(url: str, port: int) -> str:
    """``url`` on another port of the same host ("" stays "")."""
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"[{host}]:{port}" if ":" in host else f"{host}:{port}", parts.path, "", ""))


def secret_from_env_or_file(name: str, path: Path, generate) -> str:
    """Return the secret from the environment, else from ``path``, else create it.

    A generated secret is written with mode 0600 before anything reads it, so
    the first run of a fresh install and every run after share the same key.
    """
    value = _raw(name)
    if value:
        return value
    existing = read_secret_file(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it first: use theirs.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


def read_secret_file(path: Path) -> str | None:
    """The secret kept in ``path``, or None when there is no such file; refused when others may read it."""
    if not path.exists():
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ImproperlyConfigured(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    return path.read_text().strip()


def generate_secret_key() -> str:
    return secrets.token_urlsafe(50)


# Options an SQLite URL may carry (?timeout=30): Django's sqlite3 backend options.
_SQLITE_OPTIONS = {"timeout": int, "transaction_mode": str, "init_command": str}
_ENGINES = {"django.db.backends.sqlite3", "django.db.backends.postgresql"}


# Every query webpop runs reads one user's rows or a bounded slice: starting parallel workers costs
# more than such a query takes (docs/scaling.md, "Parallel query").
NO_PARALLEL_WORKERS = "-c max_parallel_workers_per_gather=0"


def _without_parallel_workers(given: str | None) -> str:
    """libpq's ``options`` with parallel query off, unless the URL's ``options`` set it themselves."""
    if not given:
        return NO_PARALLEL_WORKERS
    if "max_parallel_workers_per_gather" in given:
        return given
    return f"{given} {NO_PARALLEL_WORKERS}"


def parse_database_url(url: str, base_dir: Path) -> dict:
    """Turn ``sqlite:///path`` or ``postgres://user:pw@host:port/db?sslmode=require`` into Django's form.

    dj-database-url reads the URL; this keeps what webpop adds: query options are checked, not just
    passed on — for PostgreSQL they are libpq connection parameters (``sslmode``, ``sslrootcert``,
    ``connect_timeout``, ``options``, ...), checked against libpq's list so a misspelt one fails at
    start; for SQLite, the sqlite3 backend's ``timeout``, ``transaction_mode`` and ``init_command``
    over webpop's defaults. A relative SQLite path is from the repository root.
    """
    try:
        config = dict(dj_database_url.parse(url))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from None
    if config["ENGINE"] not in _ENGINES:
        scheme = url.partition(":")[0]
        raise ImproperlyConfigured(f"DATABASE_URL scheme {scheme!r} is not supported (use sqlite or postgres).")
    options = config.pop("OPTIONS", {})
    twice = [key for key, value in options.items() if isinstance(value, list)]
    if twice:
        raise ImproperlyConfigured(f"DATABASE_URL: the option {twice[0]!r} is given twice.")
    if config["ENGINE"].endswith("sqlite3"):
        # sqlite:///relative/path (from the repository root) or sqlite:////absolute/path
        if not url.startswith("sqlite:///") or config["NAME"] in ("", ":memory:"):
            raise ImproperlyConfigured("DATABASE_URL=sqlite:// needs a file path, e.g. sqlite:///var/webpop.sqlite3")
        sqlite_options: dict = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        }
        for key, value in options.items():
            kind = _SQLITE_OPTIONS.get(key)
            if kind is None:
                known = ", ".join(sorted(_SQLITE_OPTIONS))
                raise ImproperlyConfigured(f"DATABASE_URL: SQLite has no option {key!r} (known: {known}).")
            try:
                sqlite_options[key] = kind(value)
            except ValueError:
                raise ImproperlyConfigured(f"DATABASE_URL: {key}={value!r} is not a {kind.__name__}.") from None
        name = Path(config["NAME"])
        return {
            "ENGINE": config["ENGINE"],
            "NAME": str(name if name.is_absolute() else base_dir / name),
            "OPTIONS": sqlite_options,
        }
    if not config["NAME"]:
        raise ImproperlyConfigured("DATABASE_URL for PostgreSQL needs a database name after the host.")
    # libpq parameters are text (dj-database-url makes numbers and true/false of them).
    options = {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in options.items()}
    options["options"] = _without_parallel_workers(options.get("options"))
    if options:
        from psycopg import ProgrammingError
        from psycopg.conninfo import make_conninfo

        try:
            make_conninfo("", **options)  # libpq's own check of the parameter names
        except ProgrammingError as exc:
            raise ImproperlyConfigured(f"DATABASE_URL: {exc}.") from None
    return {
        "ENGINE": config["ENGINE"],
        "NAME": config["NAME"],
        "USER": config["USER"],
        "PASSWORD": config["PASSWORD"],
        "HOST": config["HOST"],
        "PORT": str(config["PORT"]),
        "OPTIONS": options,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
