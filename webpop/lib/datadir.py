"""The data dir's folders and keys, made by ``manage.py initdata`` (importing the settings writes nothing).

Keys come from the environment (SECRET_KEY, WEBPOP_ENCRYPTION_KEYS, or their ``_FILE`` variants) or from
files in the data dir that ``initdata`` generates once, mode 0600. Running it again creates only what is
missing, so `make run`, the container entrypoint and the systemd unit run it before every start.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.fernet import Fernet

from webpop.lib.env import env_str, generate_secret_key, secret_from_env_or_file

COMMAND = "python manage.py initdata"
# Each key: its variable, its file in the data dir, and how a new one is made.
KEYS = (
    ("SECRET_KEY", "secret_key", generate_secret_key),
    ("WEBPOP_ENCRYPTION_KEYS", "encryption_keys", lambda: Fernet.generate_key().decode()),
)
# The folder queue's folders (kombu's filesystem transport does not create them), when there is no Redis.
BROKER_FOLDERS = ("broker/queue", "broker/processed", "broker/control")


def running_initdata() -> bool:
    """True in ``manage.py initdata``: the one process whose settings may load before the keys exist."""
    return len(sys.argv) > 1 and sys.argv[1] == "initdata" and Path(sys.argv[0]).name == "manage.py"


def initialize(data_dir: Path, *, folder_queue: bool) -> list[str]:
    """Create the data dir's missing folders and keys; what was created, for the report (empty: nothing)."""
    created = []
    if not data_dir.is_dir():
        data_dir.mkdir(mode=0o700, parents=True)  # holds mail and keys
        created.append(f"folder {data_dir}")
    # collected static files (whitenoise warns on every request without the folder)
    for name in ("staticfiles", *(BROKER_FOLDERS if folder_queue else ())):
        folder = data_dir / name
        if not folder.is_dir():
            folder.mkdir(parents=True)
            created.append(f"folder {folder}")
    for variable, file_name, generate in KEYS:
        path = data_dir / file_name
        if env_str(variable) or path.exists():
            continue  # given by the environment, or made before: never replaced
        secret_from_env_or_file(variable, path, generate)
        created.append(f"key file {path}")
    return created
