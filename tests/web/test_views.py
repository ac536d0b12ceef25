"""Every view of the dashboard over HTTP: what it shows, how it pages, and that it is a plain
page (no inline script, a strict content security policy, assets served by the package)."""

from __future__ import annotations

import re

import httpx2
import pytest
from conftest import populate
from support.engine import Clock

from journal_core import Store, limits, verbs

pytestmark = pytest.mark.anyio
PAGE_BYTES_MAX = 200 * 1024  # the board weighs under 200 KB


def rows_of(html: str, css_class: str) -> int:
    return len(re.findall(rf'class="{css_class}[ "]', html))


async def test_the_board_shows_each_step_in_its_column_with_holders_and_dependencies(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    page = await web.get("/")
    assert page.status_code == 200
    html = page.text
    assert "Parser" in html and f"/entity/plan/{ids['plan']}" in html
    claimed = html.split('class="col col-claimed"')[1].split('class="col col-blocked"')[0]
    assert "Tokenizer" in claimed and "<b>bob</b>" in claimed
    assert 'data-expires="' in claimed and "9m 50s left" in claimed
    todo = html.split('class="col col-todo"')[1].split('class="col col-ready"')[0]
    assert "Grammar" in todo and "waits for" in todo
    ready = html.split('class="col col-ready"')[1].split('class="col col-claimed"')[0]
    assert "Bench" in ready
    assert "unblocks s2" in claimed
    assert 'data-feed-src="/feed/stream?after=' in html  # the live panel


async def test_the_board_pages_through_more_plans_than_a_page_holds(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    for number in range(limits.board_plans_page_max + 1):
        now.advance(1)
        store.mutate("alice", lambda m, n=number: verbs.plan_create(m, f"Plan {n:03d}",
                                                                    steps=["only"]))
    first, second = (await web.get("/")).text, (await web.get("/?page=2")).text
    assert rows_of(first, "lane") == limits.board_plans_page_max and "Plan 000" in first
    assert rows_of(second, "lane") == 1 and f"Plan {limits.board_plans_page_max:03d}" in second
    assert 'rel="next" href="?page=2"' in first and 'rel="prev" href="?page=1"' in second
    refused = await web.get("/?page=zero")
    assert refused.status_code == 400 and "page is a whole number" in refused.text


async def test_the_board_of_fifty_plans_weighs_under_the_page_budget(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    for number in range(50):
        now.advance(1)
        store.mutate("alice", lambda m, n=number: verbs.plan_create(
            m, f"Plan {n}", "a goal " * 10, steps=["one", {"title": "two", "after": ["s1"]},
                                                    "three"]))
    for number in range(500):
        store.mutate("bob", lambda m, n=number: verbs.remember(m, "note", f"note {n}"))
    weight = 0
    for path in ("/", "/static/dashboard.css", "/static/dashboard.js", "/static/favicon.svg"):
        answer = await web.get(path)
        assert answer.status_code == 200
        weight += len(answer.content)
    assert weight < PAGE_BYTES_MAX


async def test_claims_show_holders_paths_time_left_and_claims_taken_over(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    now.advance(51)  # carol's file claim (60 s) lapses
    store.mutate("dave", lambda m: verbs.claim(m, "file:src/app.py", 300))
    html = (await web.get("/claims")).text
    live = html.split("Recently expired")[0]
    assert '<code class="path" title="file reservation">src/app.py</code>' in live
    assert "dave" in live and "took over from carol" in live
    assert f"step {ids['plan']}/s1" in live and "bob" in live
    taken = html.split("Recently taken over")[1]
    assert "carol" in taken and "taken over by <b>dave</b>" in taken
    assert 'action="/claims/' in live  # a release form per live claim


async def test_claims_expiring_soon_are_marked(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    store.mutate("carol", lambda m: verbs.claim(m, "file:docs/", 60))
    html = (await web.get("/claims")).text
    assert "1 expiring soon" in html and '<tr class="soon">' in html


async def test_the_feed_filters_by_actor_family_and_action_and_links_rows_to_entities(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    everything = (await web.get("/feed")).text
    assert f'href="/entity/message/{ids["message"]}"' in everything
    assert "store created" in everything  # journal notes too
    bob = (await web.get("/feed?actor=bob")).text
    assert rows_of(bob, "event") == 5 and "carol claimed" not in bob  # 5 records in 3 txns
    claims = (await web.get("/feed?family=claim&action=claim")).text
    assert rows_of(claims, "event") == 2
    assert 'data-feed-src="/feed/stream?after=' in claims and "family=claim" in claims
    refused = await web.get("/feed?family=plans")
    assert refused.status_code == 400 and "family is one of" in refused.text


async def test_the_feed_pages_back_to_older_events_without_a_live_stream(
    web: httpx2.AsyncClient, store: Store,
) -> None:
    for number in range(limits.events_page_max + 5):
        store.mutate("bob", lambda m, n=number: verbs.remember(m, "note", f"n{n}"))
    first = (await web.get("/feed")).text
    older = re.search(r'href="/feed\?before=(\d+)"', first)
    assert older and rows_of(first, "event") == limits.events_page_max
    second = (await web.get(f"/feed?before={older.group(1)}")).text
    assert rows_of(second, "event") == store.head_seq - limits.events_page_max
    assert "data-feed-src" not in second and "newest (live)" in second


async def test_an_entity_page_shows_every_rev_who_wrote_it_when_and_what_changed(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    store.mutate("bob", lambda m: verbs.complete(m, ids["step_claim"], "tokens work"))
    html = (await web.get(f"/entity/plan/{ids['plan']}")).text
    assert "3 records of the journal, back to its first" in html
    history = html.split('id="history"')[1]
    assert history.index("rev 3") < history.index("rev 2") < history.index("rev 1")
    assert "steps[s1].status" in history and "<del>claimed</del>" in history
    assert "<ins>done</ins>" in history and "<ins>tokens work</ins>" in history
    assert "by <span class=\"actor\">alice</span>" in history


async def test_every_family_has_an_entity_page(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    pages = {"claim": ids["file_claim"], "memory": ids["memory"], "message": ids["message"],
             "handoff": ids["handoff"]}
    for family, item_id in pages.items():
        answer = await web.get(f"/entity/{family}/{item_id}")
        assert answer.status_code == 200, family
        assert "History" in answer.text and item_id in answer.text
    memory = (await web.get(f"/entity/memory/{ids['memory']}")).text
    assert f'/entity/memory/{ids["old_memory"]}' in memory and "replaces" in memory
    claim = (await web.get(f"/entity/claim/{ids['file_claim']}")).text
    assert "src/app.py" in claim and 'name="reason"' in claim


async def test_an_unknown_entity_is_a_404_that_says_where_to_find_ids(
    web: httpx2.AsyncClient,
) -> None:
    answer = await web.get("/entity/plan/pln_0000000000000000")
    assert answer.status_code == 404
    assert "no plan with id" in answer.text and "search" in answer.text
    assert (await web.get("/entity/plans/x")).status_code == 404
    assert (await web.get("/no/such/page")).status_code == 404


async def test_memory_shows_superseded_chains_and_filters_by_kind_and_status(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    store.mutate("bob", lambda m: verbs.remember(m, "trap", "Never rename the lock file"))
    active = (await web.get("/memory?kind=decision&status=active")).text
    assert "Use TOML 1.0" in active and "Never rename" not in active
    assert f'href="/entity/memory/{ids["old_memory"]}"' in active  # the chain
    everything = (await web.get("/memory")).text
    assert len(re.findall(r'<td class="kind k-', everything)) == 3


async def test_messages_and_handoffs_say_who_to_whom_since_when_and_the_answer(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    messages = (await web.get("/messages")).text
    assert "hello all" in messages and "everyone" in messages
    assert 'action="/messages"' in messages and 'action="/handoffs"' in messages
    open_handoffs = (await web.get("/handoffs")).text
    assert "bob → carol" in open_handoffs and "Take the grammar" in open_handoffs
    assert "10s ago" in open_handoffs
    store.mutate("carol", lambda m: verbs.respond_handoff(m, ids["handoff"], True, "on it"))
    assert "Take the grammar" not in (await web.get("/handoffs")).text
    answered = (await web.get("/handoffs?status=accepted")).text
    assert "accepted by carol" in answered


async def test_search_finds_entities_by_their_words(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    ids = populate(store, now)
    html = (await web.get("/search?q=toml+tables")).text
    assert f'href="/entity/memory/{ids["memory"]}"' in html
    assert "Nothing holds" in (await web.get("/search?q=zebra")).text
    assert (await web.get("/search")).status_code == 200


async def test_health_gives_head_seq_segments_checkpoint_counters_and_a_verdict(
    web: httpx2.AsyncClient, store: Store, now: Clock,
) -> None:
    populate(store, now)
    html = (await web.get("/health")).text
    assert "Healthy: the journal reads to seq" in html
    assert f"<th>head seq</th><td>{store.head_seq}</td>" in html
    assert "segments" in html and "newest checkpoint" in html
    assert "torn tails" in html and "rev gaps" in html


async def test_pages_are_plain_html_with_a_strict_policy_and_assets_from_the_package(
    web: httpx2.AsyncClient,
) -> None:
    for path in ("/", "/claims", "/feed", "/memory", "/messages", "/handoffs", "/search",
                 "/health"):
        answer = await web.get(path)
        assert answer.status_code == 200, path
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "<script>" not in answer.text and "http://" not in answer.text.split(
            "</head>")[0]
    script = await web.get("/static/dashboard.js")
    assert script.status_code == 200 and "EventSource" in script.text
    assert (await web.get("/static/dashboard.css")).headers["content-type"].startswith(
        "text/css")


async def test_a_long_history_pages_back_through_older_links(
    web: httpx2.AsyncClient, store: Store,
) -> None:
    (_, plan_id), _ = store.mutate("alice", lambda m: verbs.plan_create(m, "Often edited"))
    for number in range(limits.revisions_page_max):
        store.mutate("bob", lambda m, n=number: verbs.plan_update(m, plan_id, goal=f"goal {n}"))
    first = (await web.get(f"/entity/plan/{plan_id}")).text
    older = re.search(r'href="\?before=(\d+)#history"', first)
    assert older and rows_of(first, "revision") == limits.revisions_page_max
    assert "back to its first" not in first
    second = (await web.get(f"/entity/plan/{plan_id}?before={older.group(1)}")).text
    assert rows_of(second, "revision") == 1 and "back to its first" in second
    assert "by <span class=\"actor\">alice</span>" in second
