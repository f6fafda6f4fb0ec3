"""Build a virtualenv the way an install recipe says: the documented one, or the Dockerfile's install step.

A recipe is what decides what gets installed: the Python version, the files present when the install runs,
the install commands and the pip settings they run with. Recipes that are the same share one virtualenv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# pip settings that change how fast an install is, not what it installs.
_SPEED_ONLY = {"PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
_PIP_INSTALL = re.compile(r"^(?:python[0-9.]*\s+-m\s+)?pip[0-9.]*\s+install\b")


@dataclass(frozen=True)
class Recipe:
    python: str  # "3.11"
    files: tuple[str, ...]  # repository files present when the commands run (copied at the same paths)
    commands: tuple[str, ...]  # shell commands, run with the virtualenv's bin first on PATH
    pip_env: dict[str, str] = field(default_factory=dict)

    def key(self) -> str:
        digest = hashlib.sha256()
        spec = {"python": self.python, "files": self.files, "commands": self.commands, "env": self.pip_env}
        digest.update(json.dumps(spec, sort_keys=True).encode())
        for name in self.files:
            digest.update((REPO / name).read_bytes())
        return digest.hexdigest()[:16]


def system_python(name: str) -> str | None:
    """``name`` on PATH, not counting the virtualenv these tests run in."""
    own = Path(sys.prefix)
    entries = [entry for entry in os.environ.get("PATH", "").split(os.pathsep) if not Path(entry).is_relative_to(own)]
    return shutil.which(name, path=os.pathsep.join(entries))


def python_version(executable: str) -> str:
    out = subprocess.run(
        [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def documented() -> Recipe:
    """README, docs/deployment.md and the systemd units: `python3 -m venv .venv`, then requirements.txt alone."""
    python3 = system_python("python3")
    assert python3, "python3 is not on PATH"
    return Recipe(python_version(python3), ("requirements.txt",), ("pip install -r requirements.txt",))


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in dockerfile.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    if current:
        joined.append(current)
    result = []
    for text in joined:
        instruction, _, arguments = text.strip().partition(" ")
        result.append((instruction.upper(), arguments.strip()))
    return result


def _env_pairs(arguments: str) -> dict[str, str]:
    words = shlex.split(arguments)
    if words and "=" not in words[0]:  # the old form: ENV NAME value with spaces
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return [name for name in out.stdout.splitlines() if (REPO / name).is_file()]


def dockerfile(path: Path = REPO / "Dockerfile") -> Recipe:
    """The Dockerfile's install step as written: its base image's Python, the files COPY put in place before
    each RUN, that RUN's pip install commands, and the pip settings of its ENV lines."""
    python = None
    pip_env: dict[str, str] = {}
    files: list[str] = []  # copied so far
    at_install: set[str] = set()  # present when a pip install runs (a later COPY . . does not count)
    commands: list[str] = []
    for instruction, arguments in _instructions(path.read_text()):
        if instruction == "FROM":
            match = re.match(r"^(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)", arguments)
            assert match, f"the base image {arguments!r} is not an official python image: cannot rebuild it here"
            python = match.group(1)
        elif instruction == "ENV":
            pip_env.update({k: v for k, v in _env_pairs(arguments).items() if k.startswith("PIP_")})
        elif instruction == "COPY":
            sources = [word for word in shlex.split(arguments) if not word.startswith("--")][:-1]
            for source in sources:
                if source.rstrip("/") == ".":
                    files.extend(_tracked_files())
                else:
                    assert (REPO / source).is_file(), f"COPY {source}: only files or . are understood here"
                    files.append(source)
        elif instruction == "RUN" and not arguments.startswith("["):
            for segment in re.split(r"&&|;", arguments):
                if _PIP_INSTALL.match(segment.strip()):
                    commands.append(" ".join(segment.split()))
                    at_install.update(files)
    assert python, "the Dockerfile has no FROM line"
    assert commands, "the Dockerfile installs nothing with pip"
    kept_env = {k: v for k, v in sorted(pip_env.items()) if k not in _SPEED_ONLY}
    return Recipe(python, tuple(sorted(at_install)), tuple(commands), kept_env)


def build(recipe: Recipe, where: Path) -> Path:
    """A fresh virtualenv made by the recipe's Python, with the recipe's commands run in a folder that holds
    only the recipe's files. Returns the virtualenv's folder."""
    python = system_python(f"python{recipe.python}")
    assert python, f"Python {recipe.python} (the install's) is not on this machine"
    venv, context = where / "venv", where / "context"
    for name in recipe.files:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, context / name)
    context.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    env = clean_env(venv)
    env.update(recipe.pip_env)
    for command in recipe.commands:
        done = subprocess.run(["sh", "-c", command], cwd=context, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return venv


def clean_env(venv: Path) -> dict[str, str]:
    """This machine's environment with ``venv`` as the only Python on PATH (nothing of the test's own)."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
    env["VIRTUAL_ENV"] = str(venv)
    return env
