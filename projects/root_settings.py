"""Settings for `scrapy` run from the repository root (the top-level scrapy.cfg): the demo
project's own settings, with projects/demo importable so that ``demo.spiders`` and
``demo.resolver`` load as they do from projects/demo."""

import sys
from pathlib import Path

_DEMO = str(Path(__file__).resolve().parent / "demo")
if _DEMO not in sys.path:
    sys.path.insert(0, _DEMO)

from demo.settings import *  # noqa: E402, F403
