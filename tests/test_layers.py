"""The layering in .importlinter holds, and a wrong arrow breaks it (docs/design.md, "Layers")."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _root_packages() -> list[str]:
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    return config["importlinter"]["root_packages"].split()


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the packages come from cwd alone
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_repository_keeps_every_contract():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout
    assert "BROKEN" not in result.stdout


def _python_only(folder: str, names: list[str]) -> set[str]:
    return {
        name for name in names if name == "__pycache__" or (Path(folder, name).is_file() and not name.endswith(".py"))
    }


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("accounts/zz_wrong.py", "from mailbox.models import Message\n", "accounts imports nothing from mailbox"),
        ("webpop/lib/zz_wrong.py", "from accounts import models\n", "webpop.lib (shared infrastructure)"),
        ("mailbox/zz_wrong.py", "from celery import shared_task\n", "Only tasks.py modules import Celery"),
        ("users/zz_wrong.py", "from mailbox import store\n", "Layers"),
        ("ops/zz_wrong.py", "from webpop import urls\n", "Layers"),
        ("mailbox/zz_wrong.py", "from mailbox import views\n", None),  # imports within an app are fine
    ],
)
def test_a_wrong_import_breaks_its_contract(tmp_path, module, source, contract):
    for package in _root_packages():
        shutil.copytree(REPO / package, tmp_path / package, ignore=_python_only)
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    (tmp_path / module).write_text(source)

    result = _lint(tmp_path)

    if contract is None:
        assert result.returncode == 0, result.stdout + result.stderr
        return
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout  # names the importer


def test_an_import_cycle_within_an_app_breaks_its_contract(tmp_path):
    for package in _root_packages():
        shutil.copytree(REPO / package, tmp_path / package, ignore=_python_only)
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    (tmp_path / "users/backends.py").write_text("from users import sessions\n")  # sessions imports backends

    result = _lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "No import cycles between the modules of a package BROKEN" in result.stdout
    assert "No cycles are allowed in users." in result.stdout
    assert "- .sessions -> .backends" in result.stdout
