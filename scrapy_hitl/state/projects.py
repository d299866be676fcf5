"""Registered Scrapy projects: what ``hitl worker`` may run as jobs.

A project is a name and a folder holding ``scrapy.cfg``. Every worker host must see it at
the same path (a shared checkout, the same container image). Its spiders are what
``scrapy list`` prints there, cached on the row: listing loads every spider module, which
takes a second or more, so it runs when the project is added and when someone asks for a
refresh, never per request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from scrapy_hitl.state.models import Project, iso, utcnow

if TYPE_CHECKING:
    from scrapy_hitl.state.db import Database

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
AUTO_REFRESH_AFTER = 30.0  # seconds: an unknown spider refreshes a spider list at least this old
LIST_TIMEOUT = 120.0  # seconds for ``scrapy list``: a project that imports a lot is slow, not stuck


class ProjectNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no project named {name!r}; `hitl projects list` shows the registered ones "
                         f"and `hitl projects add PATH` registers one")
        self.name = name


class ProjectInvalid(ValueError):
    """Bad input for a project: ``field`` names what is wrong (for a 422 or a CLI message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def project_to_dict(p: Project) -> dict[str, Any]:
    return {
        "name": p.name,
        "path": p.path,
        "spiders": list(p.spiders or []),
        "spiders_at": iso(p.spiders_at),
        "spiders_error": p.spiders_error,
        "created_at": iso(p.created_at),
    }


def check_path(path: str | os.PathLike[str]) -> Path:
    """The project folder as an absolute path; ProjectInvalid unless it holds ``scrapy.cfg``."""
    try:
        folder = Path(path).expanduser().resolve()
        is_dir = folder.is_dir()
    except (OSError, RuntimeError, ValueError) as exc:  # a NUL byte, ~nobody, a name too long
        raise ProjectInvalid("path", f"{str(path)[:200]!r} is not a usable path ({str(exc)[:200]}); "
                                     f"give the folder that holds scrapy.cfg") from None
    if not is_dir:
        raise ProjectInvalid("path", f"{folder} is not a folder; give the folder that holds scrapy.cfg")
    if not (folder / "scrapy.cfg").is_file():
        raise ProjectInvalid("path", f"{folder} has no scrapy.cfg; give the Scrapy project's folder "
                                     f"(the one `scrapy startproject` created)")
    return folder


def add(db: Database, path: str | os.PathLike[str], name: str | None = None, *,
        replace: bool = False) -> dict[str, Any]:
    """Register the project at ``path`` (named after its folder unless ``name``) and list
    its spiders. ``replace`` points an existing name at the new path instead of refusing."""
    folder = check_path(path)
    name = name or folder.name
    if not NAME_RE.match(name):
        raise ProjectInvalid("name", f"{name!r} is not a valid project name: use 1 to 100 letters, digits, "
                                     f"'.', '_' or '-', starting with a letter or digit")
    spiders, error = list_spiders(folder)
    with db.session() as s:
        project = s.scalar(select(Project).where(Project.name == name))
        if project is not None and not replace and project.path != str(folder):
            raise ProjectInvalid("name", f"a project named {name!r} already exists at {project.path}; "
                                         f"choose another name with --name, or remove it first")
        if project is None:
            project = Project(name=name, path=str(folder))
            s.add(project)
        project.path = str(folder)
        _store_spiders(project, spiders, error)
        s.flush()
        return project_to_dict(project)


def get(db: Database, name: str) -> dict[str, Any]:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ProjectNotFound(name)  # no such name can be registered (and a NUL byte is a PostgreSQL error)
    with db.session() as s:
        project = s.scalar(select(Project).where(Project.name == name))
        if project is None:
            raise ProjectNotFound(name)
        return project_to_dict(project)


def list_(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        return [project_to_dict(p) for p in s.scalars(select(Project).order_by(Project.name))]


def remove(db: Database, name: str) -> None:
    get(db, name)
    with db.session() as s:
        if not s.execute(delete(Project).where(Project.name == name)).rowcount:
            raise ProjectNotFound(name)


def refresh(db: Database, name: str) -> dict[str, Any]:
    """List the project's spiders again (after a deploy added one)."""
    path = get(db, name)["path"]
    spiders, error = list_spiders(Path(path))
    with db.session() as s:
        project = s.scalar(select(Project).where(Project.name == name))
        if project is None:
            raise ProjectNotFound(name)
        _store_spiders(project, spiders, error)
        s.flush()
        return project_to_dict(project)


def check_spider(db: Database, project: str, spider: str) -> dict[str, Any]:
    """The project, if it has ``spider`` (refreshing the cached list when it does not, since
    a deploy may have added it, unless the list is younger than ``AUTO_REFRESH_AFTER``: a
    caller repeating an unknown name must not make the server run ``scrapy list`` each time);
    ProjectNotFound or ProjectInvalid otherwise."""
    found = get(db, project)
    if spider in found["spiders"]:
        return found
    listed_at = datetime.fromisoformat(found["spiders_at"]) if found["spiders_at"] else None
    if listed_at is None or (utcnow() - _aware(listed_at)).total_seconds() >= AUTO_REFRESH_AFTER:
        found = refresh(db, project)
    if spider in found["spiders"]:
        return found
    known = ", ".join(found["spiders"]) or "none"
    hint = f" (`scrapy list` failed: {found['spiders_error']})" if found["spiders_error"] else ""
    raise ProjectInvalid("spider", f"project {project!r} has no spider {spider!r}; its spiders: {known}{hint}")


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def list_spiders(folder: Path) -> tuple[list[str], str | None]:
    """``scrapy list`` in ``folder``, with this interpreter: (names, None), or ([], why)."""
    try:
        done = subprocess.run([sys.executable, "-m", "scrapy", "list"], cwd=folder, capture_output=True,
                              text=True, timeout=LIST_TIMEOUT, env=project_env(folder))
    except subprocess.TimeoutExpired:
        return [], f"`scrapy list` took more than {LIST_TIMEOUT:.0f} s"
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return [], (lines[-1] if lines else f"`scrapy list` exited with {done.returncode}")[:2000]
    return sorted(line.strip() for line in done.stdout.splitlines() if line.strip()), None


def project_env(folder: Path) -> dict[str, str]:
    """The environment for a command in the project: without a SCRAPY_SETTINGS_MODULE or
    SCRAPY_PROJECT inherited from whoever runs us, so ``scrapy.cfg`` decides."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCRAPY_SETTINGS_MODULE", "SCRAPY_PROJECT")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), env.get("PYTHONPATH", "")) if p)
    return env



def _store_spiders(project: Project, spiders: list[str], error: str | None) -> None:
    project.spiders = spiders
    project.spiders_error = error
    project.spiders_at = utcnow()
