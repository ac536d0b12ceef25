"""Whether the browser tests can run here, and what to say when they cannot: skip with how
to enable them, or -- with AGENTJOURNAL_REQUIRE_BROWSER=1 (``.ci/run``) -- fail. (A plain
module beside the tests, imported by name.)"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Mapping

REQUIRE_ENV = "AGENTJOURNAL_REQUIRE_BROWSER"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOW_TO = ("install Debian's chromium (`apt-get install -y chromium chromium-driver`) and the "
          "test extra (`pip install -e '.[test]'`, which brings Playwright for Python)")


def browser_missing(chromium: str = CHROMIUM) -> str | None:
    """Why no browser test can run here, or None."""
    problems = []
    if not os.path.exists(chromium):
        problems.append(f"no Chromium at {chromium}")
    if importlib.util.find_spec("playwright") is None:
        problems.append("Playwright for Python is not installed")
    return "; ".join(problems) or None


def verdict(missing: str | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """None (run), or ("skip" | "fail", the message)."""
    if missing is None:
        return None
    message = f"browser tests need a headless Chromium: {missing}; {HOW_TO}"
    if environ.get(REQUIRE_ENV) == "1":
        return "fail", f"{message} ({REQUIRE_ENV}=1: they must run here, not skip)"
    return "skip", message
