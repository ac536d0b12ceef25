"""What every page needs: the open store, the sessions, and the templates (Jinja2, escaped
by default) with the few filters they use to show times, time left and links."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from journal_core import Store, clock

from .auth import Sessions, session_of
from .limits import FEED_STREAMS_MAX

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
SECONDS_PER = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
NAV = (("board", "/", "Board"), ("claims", "/claims", "Claims"), ("feed", "/feed", "Feed"),
       ("memory", "/memory", "Memory"), ("messages", "/messages", "Messages"),
       ("handoffs", "/handoffs", "Handoffs"), ("search", "/search", "Search"),
       ("health", "/health", "Health"))


@dataclass
class Dashboard:
    """The dashboard of one open store."""

    store: Store
    sessions: Sessions
    env: Environment = field(init=False)
    streams_open: int = 0
    streams_max: int = FEED_STREAMS_MAX

    def __post_init__(self) -> None:
        self.env = templates()

    def page(self, request: Request, name: str, status_code: int = 200,
             **context: Any) -> HTMLResponse:
        session = session_of(request)
        html = self.env.get_template(name).render(
            request_path=request.url.path, session=session,
            csrf=self.sessions.csrf(session), login_required=self.sessions.login_required,
            nav=NAV, store_root=self.store.root, **context)
        return HTMLResponse(html, status_code=status_code)


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, left=left, entity_url=entity_url, pretty=pretty,
                       ago=ago)
    env.globals.update(query=query)
    return env


def when(ts: object) -> str:
    """``2026-12-02 07:55:14 UTC`` from a record's timestamp."""
    text = str(ts or "")
    try:
        moment = clock.parse_rfc3339(text)
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ts: object, now: datetime) -> str:
    try:
        seconds = int((now - clock.parse_rfc3339(str(ts or ""))).total_seconds())
    except ValueError:
        return ""
    return "just now" if seconds < 1 else f"{left(seconds)} ago"


def left(seconds: object) -> str:
    """``12m 03s``, ``2h 05m``: the two largest units."""
    total = int(seconds) if isinstance(seconds, int | float) else 0
    if total <= 0:
        return "0s"
    parts: list[str] = []
    for unit, size in SECONDS_PER:
        if total >= size or parts:
            parts.append(f"{total // size:0{2 if parts else 1}d}{unit}")
            total %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def entity_url(item_id: object, family: object) -> str:
    return f"/entity/{quote(str(family), safe='')}/{quote(str(item_id), safe='')}"


def pretty(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def query(**params: object) -> str:
    """``?a=1&b=2`` without the empty ones (a link keeps the filters it was given)."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else "?"


__all__ = ["NAV", "STATIC_DIR", "TEMPLATES_DIR", "Dashboard", "dashboard", "templates"]
