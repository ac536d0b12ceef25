"""Who may see and post: loopback (Host/Origin guard), the token entered once in a login form
and kept in an HttpOnly SameSite=Strict cookie (never in a URL), the MCP endpoint's bearer
token beside the dashboard, and the form token plus Origin check on every POST."""

from __future__ import annotations

import httpx2
import pytest
from agentjournal.app import build_server
from agentjournal.http import http_app
from agentjournal.web import dashboard_app
from agentjournal.web.auth import COOKIE_NAME
from conftest import BASE_URL, TOKEN, browser_like, csrf_of, post_form

from journal_core import Store

pytestmark = pytest.mark.anyio
REMOTE_URL = "http://journal.example:8765"


async def log_in(client: httpx2.AsyncClient, token: str = TOKEN,
                 name: str = "ada") -> httpx2.Response:
    return await post_form(client, "/login", "/login", token=token, name=name, next="/claims")


async def test_on_loopback_another_host_or_another_sites_origin_is_refused(store: Store) -> None:
    app = http_app(build_server(store), "127.0.0.1", None, 8766, dashboard_app(store))
    async with browser_like(app) as web:
        assert (await web.get("/")).status_code == 200
        rebound = await web.get("/", headers={"Host": "evil.example:8766"})
        assert rebound.status_code == 421
        foreign = await web.post("/messages", data={"to": "*", "body": "x"},
                                 headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert "another site" in foreign.json()["error_description"]


async def test_with_a_token_every_page_leads_to_the_login_form(store: Store) -> None:
    async with browser_like(dashboard_app(store, TOKEN), REMOTE_URL) as web:
        for path in ("/", "/claims?page=1", "/entity/plan/pln_0000000000000000", "/health"):
            answer = await web.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/login?next=")
        form = await web.get("/login")
        assert form.status_code == 200 and 'type="password" name="token"' in form.text
        assert store.root not in form.text  # nothing about the store before the token
        assert (await web.get("/feed/stream?after=0")).status_code == 401
        assert (await web.post("/messages", data={})).status_code == 401
        assert (await web.get("/static/dashboard.css")).status_code == 200


async def test_the_right_token_sets_an_httponly_strict_cookie_and_a_wrong_one_is_refused(
    store: Store,
) -> None:
    async with browser_like(dashboard_app(store, TOKEN), REMOTE_URL) as web:
        wrong = await log_in(web, token="not-the-token")
        assert wrong.status_code == 401 and "not this server" in wrong.text
        assert (await web.get("/")).status_code == 303
        right = await log_in(web)
        assert right.status_code == 303 and right.headers["location"] == "/claims"
        cookie = right.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE_NAME}=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert TOKEN not in cookie and TOKEN not in right.headers["location"]
        board = await web.get("/")
        assert board.status_code == 200 and "human:ada" in board.text


async def test_the_token_is_never_taken_from_a_url(store: Store) -> None:
    async with browser_like(dashboard_app(store, TOKEN), REMOTE_URL) as web:
        assert (await web.get(f"/?token={TOKEN}")).status_code == 303
        assert (await web.get(f"/login?token={TOKEN}&next=/")).status_code == 200
        assert (await web.get("/")).status_code == 303


async def test_a_forged_cookie_or_one_signed_under_another_token_is_no_session(
    store: Store,
) -> None:
    async with browser_like(dashboard_app(store, "another-token-0000"), REMOTE_URL) as other:
        await log_in(other, token="another-token-0000")
        foreign = other.cookies[COOKIE_NAME]
    async with browser_like(dashboard_app(store, TOKEN), REMOTE_URL) as web:
        web.cookies.set(COOKIE_NAME, foreign)
        assert (await web.get("/")).status_code == 303
        web.cookies.set(COOKIE_NAME, "eyJzIjoieCIsIm4iOiJhZGEiLCJhIjp0cnVlfQ.forged")
        assert (await web.get("/")).status_code == 303


async def test_the_mcp_endpoint_keeps_its_bearer_token_beside_the_dashboard(store: Store) -> None:
    app = http_app(build_server(store), "0.0.0.0", TOKEN, 8765, dashboard_app(store, TOKEN))
    async with browser_like(app, REMOTE_URL) as web:
        await log_in(web)
        assert (await web.get("/")).status_code == 200
        with_cookie_only = await web.post("/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                        "method": "ping"})
        assert with_cookie_only.status_code == 403  # the cookie is not the bearer token
        assert "bearer token is missing" in with_cookie_only.json()["error"]["message"]


async def test_a_form_without_this_sessions_form_token_is_refused(web: httpx2.AsyncClient,
                                                                  store: Store) -> None:
    head = store.head_seq
    html = (await web.get("/messages")).text
    missing = await web.post("/messages", data={"to": "*", "body": "hi", "name": "ada"})
    wrong = await web.post("/messages", data={"to": "*", "body": "hi", "name": "ada",
                                              "csrf": csrf_of(html)[:-2] + "00"})
    assert missing.status_code == 403 and wrong.status_code == 403
    assert "form token" in missing.text and "reload the page" in missing.text
    store.refresh()
    assert store.head_seq == head  # nothing written


async def test_a_form_posted_from_another_sites_page_is_refused_beyond_loopback(
    store: Store,
) -> None:
    async with browser_like(dashboard_app(store, TOKEN), REMOTE_URL) as web:
        await log_in(web)
        token = csrf_of((await web.get("/messages")).text)
        head = store.head_seq
        foreign = await web.post("/messages", data={"csrf": token, "to": "*", "body": "hi"},
                                 headers={"Origin": "http://evil.example"})
        cross_site = await web.post("/messages", data={"csrf": token, "to": "*", "body": "hi"},
                                    headers={"Sec-Fetch-Site": "cross-site"})
        assert foreign.status_code == 403 and cross_site.status_code == 403
        assert "another site" in foreign.text
        store.refresh()
        assert store.head_seq == head
        same = await web.post("/messages", data={"csrf": token, "to": "*", "body": "hi"},
                              headers={"Origin": REMOTE_URL})
        assert same.status_code == 303


async def test_without_a_token_the_loopback_dashboard_has_no_login(
    web: httpx2.AsyncClient,
) -> None:
    assert (await web.get("/")).status_code == 200
    assert (await web.get("/login?next=/claims")).headers["location"] == "/claims"
    assert BASE_URL.startswith("http://127.0.0.1")
