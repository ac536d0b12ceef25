"""What a person does from the dashboard -- post a message or a handoff, release a stuck
claim with a reason -- is an ordinary mutation by ``human:<name>``, which the agents read in
``read_unseen``; the name is asked once and kept in the session cookie."""

from __future__ import annotations

import httpx2
import pytest
from conftest import csrf_of, populate, post_form
from support.engine import Clock

from journal_core import Store

pytestmark = pytest.mark.anyio


def unseen_from(store: Store, reader: str, actor: str) -> list[dict[str, object]]:
    found = store.read_unseen(reader, limit=100, payloads=True)["events"]
    return [e for e in found if e["actor"] == actor]


async def test_a_message_posted_from_the_dashboard_reaches_the_agents_read_unseen(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    populate(store, now)
    sent = await post_form(web, "/messages", "/messages", name="Ada Lovelace", to="bob",
                           body="please look at the grammar first")
    assert sent.status_code == 303 and "/entity/message/msg_" in sent.headers["location"]
    shown = await web.get(sent.headers["location"])
    assert "Done: sent" in shown.text and "human:Ada Lovelace" in shown.text
    (event,) = unseen_from(store, "bob", "human:Ada Lovelace")
    assert event["item_type"] == "message" and event["action"] == "create"
    assert event["payload"]["to"] == "bob"
    assert event["payload"]["body"] == "please look at the grammar first"


async def test_the_name_is_asked_once_and_kept_in_the_cookie(
    web: httpx2.AsyncClient, store: Store,
) -> None:
    first = (await web.get("/messages")).text
    assert 'name="name"' in first
    await post_form(web, "/messages", "/messages", name="ada", to="*", body="one")
    second = (await web.get("/messages")).text
    assert 'name="name"' not in second and "human:ada" in second
    again = await post_form(web, "/messages", "/messages", to="*", body="two")
    assert again.status_code == 303
    authors = {e["actor"] for e in unseen_from(store, "bob", "human:ada")}
    assert authors == {"human:ada"} and len(unseen_from(store, "bob", "human:ada")) == 2


async def test_a_handoff_posted_from_the_dashboard_reaches_its_recipient(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    populate(store, now)
    sent = await post_form(web, "/handoffs", "/handoffs", name="ada", to="carol",
                           summary="Finish the bench", context="numbers in bench/")
    assert sent.status_code == 303 and "/entity/handoff/hnd_" in sent.headers["location"]
    (event,) = unseen_from(store, "carol", "human:ada")
    assert event["item_type"] == "handoff"
    assert event["payload"]["summary"] == "Finish the bench"
    assert "human:ada → carol" in (await web.get("/handoffs")).text


async def test_a_person_releases_a_stuck_claim_with_a_reason_its_holder_reads(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    released = await post_form(web, "/claims", f"/claims/{ids['step_claim']}/release",
                               name="ada", reason="bob's session died; freeing the tokenizer")
    assert released.status_code == 303
    claim = store.entity_view("claim", ids["step_claim"])["entity"]
    assert claim["status"] == "released"
    assert claim["reason"] == "bob's session died; freeing the tokenizer"
    plan = store.entity_view("plan", ids["plan"])["entity"]
    assert plan["steps"][0]["status"] == "todo"
    events = unseen_from(store, "bob", "human:ada")
    assert any("freeing the tokenizer" in str(e.get("summary")) for e in events)
    assert "Release" not in (await web.get("/claims")).text.split("Recently expired")[0] \
        .split(ids["step_claim"])[-1][:50]


async def test_a_release_without_a_reason_is_refused_and_nothing_is_written(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    head = store.head_seq
    refused = await post_form(web, "/claims", f"/claims/{ids['step_claim']}/release",
                              name="ada", reason=" ")
    assert refused.status_code == 400 and "say why you release it" in refused.text
    again = await post_form(web, "/claims", f"/claims/{ids['step_claim']}/release",
                            reason="now with a reason")
    assert again.status_code == 303  # the name given with the refused form was kept
    twice = await post_form(web, "/claims", f"/claims/{ids['step_claim']}/release",
                            reason="again")
    assert twice.status_code == 409 and "only an active claim" in twice.text
    store.refresh()
    assert store.head_seq == head + 2  # the release and its step going back to todo


async def test_a_name_that_cannot_be_an_actor_is_refused_with_what_a_name_holds(
    web: httpx2.AsyncClient, store: Store,
) -> None:
    head = store.head_seq
    bad = await post_form(web, "/messages", "/messages", name="<script>", to="*", body="x")
    assert bad.status_code == 400 and "letters, digits" in bad.text
    assert "<script>" not in bad.text.split("<main>")[1]
    empty = await post_form(web, "/messages", "/messages", name="", to="*", body="x")
    assert empty.status_code == 400 and "give your name" in empty.text
    store.refresh()
    assert store.head_seq == head


async def test_the_name_can_be_changed_and_forgotten(web: httpx2.AsyncClient) -> None:
    changed = await post_form(web, "/messages", "/name", name="grace", next="/claims")
    assert changed.headers["location"] == "/claims"
    assert "human:grace" in (await web.get("/")).text
    html = (await web.get("/")).text
    forgot = await web.post("/logout", data={"csrf": csrf_of(html)},
                            headers={"Origin": str(web.base_url).rstrip("/")})
    assert forgot.status_code == 303
    assert "human:grace" not in (await web.get("/")).text
