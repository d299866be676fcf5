"""The model modules a crawl maps late are mapped whole, never seen half-done.

A static crawl works on the Core tables and maps no class. It maps ``crawler_models`` when it
first needs the ORM, ``incident_models`` on its first block or error, and ``models`` (the
console's own) only if it reaches one of their services (a resolve made in the crawl queues
re-runs). Meanwhile its other threads use the ORM, and any query may
configure the mappers. A configure that runs while one of those modules is half executed
finds a class whose relationship names a class not defined yet (``Intervention.history`` ->
``InterventionEvent``), fails, and poisons every later ORM call of the process: the crawl
goes on storing nothing.

So those modules execute while holding SQLAlchemy's configure lock (the lock a configure
takes, re-entrant for the class definitions, which take it too): a configure elsewhere
waits for the module to be complete. A finder on ``sys.meta_path`` does it whatever imports
them, and first; the package installs it before any model module can be imported.

Each of them imports the ones before it in ``ORDER`` (``models`` imports both others,
``incident_models`` imports ``crawler_models``). Those are imported before the configure lock
is taken: importing one under it would wait for that module's import lock, which another
thread may hold while it waits for the configure lock (a thread's first ``Database.session``
importing ``crawler_models`` while another imports ``models``): both would wait forever.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

ORDER = ("scrapy_hitl.state.crawler_models", "scrapy_hitl.state.incident_models", "scrapy_hitl.state.models")
LATE = frozenset(ORDER)


class _LockedLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        from sqlalchemy.orm.mapper import _CONFIGURE_MUTEX

        for name in ORDER[:ORDER.index(module.__name__)]:  # not under the lock: see the docstring
            importlib.import_module(name)
        with _CONFIGURE_MUTEX:
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename...: the file's loader
        return getattr(self.loader, name)


class _LateModelsFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LATE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _LockedLoader(spec.loader)
        return spec


def install() -> None:
    if not any(isinstance(f, _LateModelsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LateModelsFinder())
