"""Git commands that rewrite the working tree (``git clean -fdx``, ``git stash -u`` and
``git stash pop``) while agents work: in the default layout (``agentjournal init`` in the
repository, no --store anywhere), the store must survive them, every acknowledged mutation
must stay in the journal, and the lock must keep excluding writers, so one target never has
two active claims.

The writers are stdio MCP servers started with their working directory in the repository
(the store is found from there), each driven by the official MCP client; every server
answers a few calls and is replaced by a new one, so stores are found again and again while
the churn goes on. A git command runs after every couple of acknowledged calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from support.reliability import JournalAudit, audit_journal, claim_problems, seq_problems
from trust_support import aj, git, log_tail, must_succeed, outcome, session
from trust_support import tail_records as read_tail

pytestmark = pytest.mark.anyio
TARGET = "file:hot.txt"
CALLS_PER_SERVER = 12  # then the server exits and a new one finds the store again
SERVER_BOUND_S = 60  # bound on one server's whole life (start-up, calls, exit)
ACKS_PER_CHURN = 2  # a git command after every this many acknowledged calls
STASHED_S_MAX = 3.0  # bound on how long work stays stashed while the writers go on


@dataclass(frozen=True)
class StormSize:
    writers: int
    run_s: float


QUICK = StormSize(writers=4, run_s=8.0)
STORM_QUICK = StormSize(writers=4, run_s=12.0)
LONG = StormSize(writers=6, run_s=90.0)


@dataclass
class Ack:
    writer: str
    op: str
    item_id: str
    rev: int
    seq: int
    status: str


@dataclass
class Storm:
    repo: Path
    logs: Path
    deadline: float
    acks: list[Ack] = field(default_factory=list)
    refusals: int = 0
    failures: list[str] = field(default_factory=list)
    churns: list[str] = field(default_factory=list)
    git_failures: list[str] = field(default_factory=list)
    servers: int = 0
    serving: int = 0  # servers that came up (their initialize was answered)
    store_id: str = ""
    progress: anyio.Event = field(default_factory=anyio.Event)

    def acknowledge(self, writer: str, op: str, content: dict[str, Any]) -> None:
        self.acks.append(Ack(writer, op, content["item_id"], content["entity_rev"],
                             content["seq"], content["entity"]["status"]))
        self.progress.set()

    def running(self) -> bool:
        return time.monotonic() < self.deadline


async def writer(storm: Storm, name: str) -> None:
    """Claim the hot target, then release or complete it, over and over; through a new
    server every CALLS_PER_SERVER calls."""
    log = storm.logs / f"{name}.err"
    rounds = 0
    while storm.running():
        storm.servers += 1
        try:
            with anyio.fail_after(SERVER_BOUND_S):
                async with session(storm.repo, log) as client:  # cwd: the repository
                    storm.serving += 1  # this server opened the store and answers
                    storm.progress.set()
                    for _ in range(CALLS_PER_SERVER // 2):
                        if not storm.running():
                            break
                        rounds += 1
                        await claim_and_let_go(storm, client, name, rounds)
        except Exception as exc:  # a server that failed to start or died
            storm.failures.append(f"{name}: server session failed: {exc!r}: {log_tail(log, 400)}")


async def claim_and_let_go(storm: Storm, client: Any, name: str, rounds: int) -> None:
    got = await outcome(client, "claim", target=TARGET, ttl_s=1, actor=name)
    if not got.ok:
        if got.protocol_error:
            storm.failures.append(f"{name}: claim: {got.text[:300]}")
        else:
            storm.refusals += 1  # held by another writer: nothing was written
        return
    assert got.content is not None
    storm.acknowledge(name, "claim", got.content)
    tool = "release" if rounds % 2 else "complete"
    done = await outcome(client, tool, claim_id=got.content["item_id"], actor=name)
    if done.ok:
        assert done.content is not None
        storm.acknowledge(name, tool, done.content)
    elif done.protocol_error:
        storm.failures.append(f"{name}: {tool}: {done.text[:300]}")
    else:
        storm.refusals += 1  # expired and taken over by another writer meanwhile


async def git_clean(storm: Storm) -> list[str]:
    done = await anyio.to_thread.run_sync(lambda: git(storm.repo, "clean", "-fdxq", check=False))
    return [f"git clean exit {done.returncode}: {done.stderr.strip()[:200]}"] \
        if done.returncode else []


async def git_stash_and_pop(storm: Storm) -> list[str]:
    """Stash work in progress (a modified file and an untracked one), let the writers go on
    (a couple of acknowledged calls, and a new server comes up; bounded), then bring the
    work back."""
    repo = storm.repo
    (repo / "README").write_text(f"work in progress {time.monotonic_ns()}\n", encoding="utf-8")
    (repo / "scratch.txt").write_text("untracked notes\n", encoding="utf-8")
    said = [await anyio.to_thread.run_sync(
        lambda: git(repo, "stash", "push", "-u", "-q", check=False))]
    await wait_for_acks(storm, len(storm.acks) + ACKS_PER_CHURN, STASHED_S_MAX,
                        servers=storm.serving + 1)  # one comes up while the work is stashed
    said.append(await anyio.to_thread.run_sync(
        lambda: git(repo, "stash", "pop", "-q", check=False)))
    if said[-1].returncode != 0:  # leave a clean slate for the next round
        await anyio.to_thread.run_sync(lambda: git(repo, "checkout", "-q", "--", "README",
                                                   check=False))
    return [f"git {' '.join(d.args[-3:])} exit {d.returncode}: {d.stderr.strip()[:200]}"
            for d in said if d.returncode != 0]


async def wait_for_acks(storm: Storm, count: int, bound_s: float,
                        servers: int = 0) -> None:
    """Until ``count`` calls were acknowledged (and ``servers`` servers started), at most
    ``bound_s`` (and the deadline)."""
    bound = min(bound_s, max(0.0, storm.deadline - time.monotonic()))
    with anyio.move_on_after(bound):
        while len(storm.acks) < count or storm.serving < servers:
            storm.progress = anyio.Event()
            await storm.progress.wait()


async def churn(storm: Storm, commands: list[Any]) -> None:
    """One git command after every ACKS_PER_CHURN acknowledged calls, until the deadline."""
    turn = 0
    while storm.running():
        await wait_for_acks(storm, len(storm.acks) + ACKS_PER_CHURN, storm.deadline)
        if not storm.running():
            return
        command = commands[turn % len(commands)]
        turn += 1
        problems = await command(storm)
        storm.churns.append(command.__name__)
        storm.git_failures += problems


def status_of(repo: Path) -> dict[str, Any]:
    """``agentjournal status --json`` in the repository (no --store)."""
    done = aj("status", "--json", cwd=repo)
    must_succeed(done, "agentjournal status in the repository")
    return dict(orjson.loads(done.stdout))


async def run_storm(repo: Path, tmp_path: Path, size: StormSize, commands: list[Any]) -> Storm:
    must_succeed(aj("init", cwd=repo), "agentjournal init in the repository")
    logs = tmp_path / "logs"
    logs.mkdir()
    storm = Storm(repo, logs, time.monotonic() + size.run_s)
    storm.store_id = status_of(repo)["store_id"]
    with anyio.fail_after(size.run_s + 3 * SERVER_BOUND_S):
        async with anyio.create_task_group() as group:
            for number in range(size.writers):
                group.start_soon(writer, storm, f"writer#{number}")
            group.start_soon(churn, storm, commands)
    return storm


def journal_problems(storm: Storm) -> list[str]:
    """What the store says after the storm, asked in the repository (no --store): it is
    the store the storm started with; ``agentjournal tail --json`` holds every acknowledged
    call at its seq and rev, no seq on two records, no target ever with two active claims;
    and so do the journal files of the store (where status says it is)."""
    done = aj("status", "--json", cwd=storm.repo)
    if done.returncode != 0:
        return [f"agentjournal status in the repository failed: {done.stderr.strip()[:400]}",
                f"{len(storm.acks)} acknowledged call(s) cannot be found"]
    status = orjson.loads(done.stdout)
    problems: list[str] = []
    if status["store_id"] != storm.store_id:
        problems.append(f"the store was replaced: store id {storm.store_id} before the storm, "
                        f"{status['store_id']} after")
    records = read_tail(storm.repo)
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        by_seq.setdefault(record["seq"], []).append(record)
    problems += [f"seq {seq} on {len(rs)} records" for seq, rs in by_seq.items() if len(rs) > 1]
    lost = []
    for ack in storm.acks:
        found = [r for r in by_seq.get(ack.seq, []) if r.get("item_id") == ack.item_id
                 and r.get("entity_rev") == ack.rev
                 and (r.get("payload") or {}).get("status") == ack.status]
        if not found:
            lost.append(ack)
    if lost:
        problems.append(f"{len(lost)} of {len(storm.acks)} acknowledged calls are not in the "
                        f"journal, e.g. {lost[:3]}")
    problems += claim_problems(JournalAudit(records=records))
    root = Path(status["store"])
    if (root / "events").is_dir():
        audit = audit_journal(root)
        problems += [f"journal files: {p}" for p in seq_problems(audit) + claim_problems(audit)]
    return problems


def check(storm: Storm) -> None:
    assert storm.churns, "no git command ran during the storm"
    problems = journal_problems(storm)
    summary = (f"{len(storm.acks)} acks, {storm.refusals} refusals, {storm.servers} servers, "
               f"{len(storm.churns)} git commands")
    assert not problems, f"{summary}:\n" + "\n".join(problems[:20])
    assert not storm.failures, f"{summary}; failed calls:\n" + "\n".join(storm.failures[:10])
    assert not storm.git_failures, f"{summary}; git failed:\n" + "\n".join(storm.git_failures[:10])
    assert len(storm.acks) >= 10, f"too little work got through: {summary}"


async def test_git_clean_fdx_while_servers_write_keeps_the_store_and_its_lock(
    repo: Path, tmp_path: Path,
) -> None:
    check(await run_storm(repo, tmp_path, QUICK, [git_clean]))


async def test_git_stash_and_pop_while_servers_write_keeps_the_store_and_its_lock(
    repo: Path, tmp_path: Path,
) -> None:
    check(await run_storm(repo, tmp_path, QUICK, [git_stash_and_pop]))


async def test_a_storm_of_git_clean_and_stash_keeps_every_acknowledged_claim_exclusive(
    repo: Path, tmp_path: Path,
) -> None:
    check(await run_storm(repo, tmp_path, STORM_QUICK, [git_clean, git_stash_and_pop]))


@pytest.mark.long
async def test_a_long_git_clean_storm_keeps_the_store_and_its_lock(
    repo: Path, tmp_path: Path,
) -> None:
    check(await run_storm(repo, tmp_path, LONG, [git_clean]))


@pytest.mark.long
async def test_a_long_storm_of_git_clean_and_stash_keeps_every_acknowledged_claim_exclusive(
    repo: Path, tmp_path: Path,
) -> None:
    check(await run_storm(repo, tmp_path, LONG, [git_clean, git_stash_and_pop]))
