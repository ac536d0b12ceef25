"""What a person can do from the dashboard: log in (with the store's token), give their
name once, post a message or a handoff, and release a stuck claim with a reason.

Each action is an ordinary journal mutation by the actor ``human:<name>``, so agents see it
in ``read_unseen`` like any other. Every form is checked first (same origin, this session's
form token); then the answer is a redirect to what changed (post/redirect/get).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from journal_core import InvalidArgument, Mutation, verbs

from .auth import (
    CSRF_FIELD,
    FormRefused,
    Session,
    check_form,
    check_person_name,
    rotate,
    safe_next,
    session_of,
    set_session,
)
from .limits import FORM_BYTES_MAX, FORM_FIELDS_MAX
from .render import dashboard, entity_url

EVERYONE = "*"


class FormTooLarge(Exception):
    """A posted form over FORM_BYTES_MAX."""


async def read_form(request: Request) -> FormData:
    """The posted form, after the origin and form-token checks."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_BYTES_MAX:
        raise FormTooLarge(f"the form is {declared} bytes; at most {FORM_BYTES_MAX}")
    form = await request.form(max_files=0, max_fields=FORM_FIELDS_MAX,
                              max_part_size=FORM_BYTES_MAX)
    check_form(request, dashboard(request).sessions, form.get(CSRF_FIELD))
    return form


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def person(request: Request, form: FormData) -> str:
    """The acting person's actor name: the session's, else the name this form gives (which
    the session then keeps)."""
    session = session_of(request)
    if session.name is None:
        try:
            name = check_person_name(text(form, "name"))
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        session = Session(session.sid, name, session.authed)
        set_session(request, session)
    actor = session.actor
    if actor is None:
        raise InvalidArgument("give your name first")
    return actor


async def mutate(request: Request, actor: str, verb: Callable[[Mutation], Any]) -> Any:
    store = dashboard(request).store
    key, _ = await run_in_threadpool(store.mutate, actor, verb)
    return key


def done(key: tuple[str, str], what: str) -> Response:
    return RedirectResponse(f"{entity_url(key[1], key[0])}?done={quote(what)}",
                            status_code=303)


# -- the person's own session ---------------------------------------------------------------
def login_form(request: Request) -> Response:
    d = dashboard(request)
    if not d.sessions.login_required:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return d.page(request, "login.html", active=None, error=None,
                  next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    d = dashboard(request)
    form = await read_form(request)
    back = safe_next(form.get("next"))
    if not d.sessions.token_matches(text(form, "token")):
        return d.page(request, "login.html", status_code=401, active=None, next=back,
                      error="That is not this server's token: enter the AGENTJOURNAL_TOKEN "
                            "the server was started with.")
    try:
        name = check_person_name(text(form, "name"))
    except ValueError as exc:
        return d.page(request, "login.html", status_code=400, active=None, next=back,
                      error=str(exc))
    set_session(request, rotate(session_of(request), name=name, authed=True))
    return RedirectResponse(back, status_code=303)


async def logout(request: Request) -> Response:
    await read_form(request)
    set_session(request, rotate(session_of(request), name=None, authed=False))
    return RedirectResponse("/login" if dashboard(request).sessions.login_required else "/",
                            status_code=303)


async def set_name(request: Request) -> Response:
    form = await read_form(request)
    try:
        name = check_person_name(text(form, "name"))
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    session = session_of(request)
    set_session(request, Session(session.sid, name, session.authed))
    return RedirectResponse(safe_next(form.get("next")), status_code=303)


# -- acting on the store ----------------------------------------------------------------------
async def post_message(request: Request) -> Response:
    form = await read_form(request)
    actor = person(request, form)
    to, body = text(form, "to") or EVERYONE, text(form, "body")
    thread = text(form, "thread") or None
    key = await mutate(request, actor, lambda m: verbs.send_message(m, to, body, thread))
    return done(key, "sent")


async def post_handoff(request: Request) -> Response:
    form = await read_form(request)
    actor = person(request, form)
    to, summary, context = text(form, "to") or EVERYONE, text(form, "summary"), text(
        form, "context")
    key = await mutate(request, actor, lambda m: verbs.send_handoff(m, to, summary, context))
    return done(key, "handed off")


async def release_claim(request: Request) -> Response:
    form = await read_form(request)
    actor = person(request, form)
    claim_id, reason = request.path_params["claim_id"], text(form, "reason")
    if not reason:
        raise InvalidArgument("say why you release it: the holder and the other agents read "
                              "the reason")
    key = await mutate(request, actor, lambda m: verbs.release_for(m, claim_id, reason))
    return done(key, "released")


__all__ = ["FormRefused", "FormTooLarge", "login", "login_form", "logout", "post_handoff",
           "post_message", "release_claim", "set_name"]
