"""A child process of the benchmark. Run by ``run.py``, never by hand:

    python bench/worker.py journal --store PATH --actor NAME --run-s S
    python bench/worker.py sqlite  --db PATH --actor NAME --run-s S
    python bench/worker.py agent   --store PATH --actor NAME --run-s S --seed N
    python bench/worker.py noop-server
    python bench/worker.py http-server --store PATH --counters FILE
    python bench/worker.py inotify-echo --dir PATH

The timed modes print ``READY`` once open, wait for ``GO`` on stdin, work for ``--run-s``
seconds, then print one JSON line with what they did. ``noop-server`` is an MCP stdio
server with one tool that does nothing (the transport's floor). ``inotify-echo`` prints
``READY``, then one line each time the kernel reports a change in ``--dir`` (the floor of
waking another process through inotify). ``http-server`` is ``agentjournal serve --transport
http`` on a free loopback port, unchanged but for two counters it writes to ``--counters``
on SIGUSR1: its committer's batches, and the fsyncs it made.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from bench import workload  # noqa: E402
from journal_core import Conflict, LockTimeout, NotFound, Store, verbs  # noqa: E402

AGENT_FILE_TARGETS = 6  # shared targets: agents collide on claims, as real ones do
AGENT_CLAIM_TTL_S = 2


def main() -> int:
    args = parse_args()
    if args.mode == "noop-server":
        return serve_noop()
    if args.mode == "inotify-echo":
        return inotify_echo(args.dir)
    if args.mode == "http-server":
        return serve_http_counted(args.store, args.counters)
    run = {"journal": run_journal, "sqlite": run_sqlite, "agent": run_agent}[args.mode]
    return run(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="a child process of bench/run.py")
    parser.add_argument("mode", choices=["journal", "sqlite", "agent", "noop-server",
                                         "inotify-echo", "http-server"])
    parser.add_argument("--dir")
    parser.add_argument("--counters")
    parser.add_argument("--store")
    parser.add_argument("--db")
    parser.add_argument("--actor", default="bench")
    parser.add_argument("--run-s", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def ready_then_go() -> None:
    """Tell the parent we are open, then start only when every sibling is (GO)."""
    os.write(1, b"READY\n")
    if sys.stdin.readline().strip() != "GO":
        raise SystemExit("no GO from the parent")


def report(result: dict[str, Any]) -> int:
    os.write(1, orjson.dumps(result) + b"\n")
    return 0


# -- row 2: durable mutations/s ----------------------------------------------------------
def run_journal(args: argparse.Namespace) -> int:
    """Claims on targets nobody else uses: one record (one event, one entity) per txn."""
    with Store(args.store, workload.SERVED) as store:
        ready_then_go()
        deadline = time.monotonic() + args.run_s
        done = 0
        while time.monotonic() < deadline:
            target = f"file:{args.actor}/{done}.py"
            store.mutate(args.actor, lambda m, t=target: verbs.claim(m, t))
            done += 1
    return report({"mutations": done})


def run_sqlite(args: argparse.Namespace) -> int:
    """The same logical work in SQLite: one event row and one entity upsert per txn."""
    connection = workload.sqlite_connect(args.db)
    ready_then_go()
    deadline = time.monotonic() + args.run_s
    done = 0
    while time.monotonic() < deadline:
        workload.sqlite_claim(connection, args.actor, done)
        done += 1
    connection.close()
    return report({"mutations": done})


# -- row 7: lock wait with many agents -----------------------------------------------------
def run_agent(args: argparse.Namespace) -> int:
    """A busy agent: claims on shared targets (conflicts and takeovers), releases, memory,
    and a read_unseen + ack now and then. Every call that takes the store lock records
    how long it waited for it (StoreLock.waited_s) and how long the whole call took."""
    rng = random.Random(args.seed)
    with Store(args.store, workload.SERVED) as store:
        agent = Agent(store, args.actor, rng)
        ready_then_go()
        deadline = time.monotonic() + args.run_s
        while time.monotonic() < deadline:
            agent.step()
    return report({"waits_s": agent.waits_s, "calls_s": agent.calls_s,
                   "refused": agent.refused, "timeouts": agent.timeouts})


class Agent:
    def __init__(self, store: Store, actor: str, rng: random.Random) -> None:
        self.store, self.actor, self.rng = store, actor, rng
        self.claims: list[str] = []
        self.waits_s: list[float] = []
        self.calls_s: list[float] = []
        self.refused = 0
        self.timeouts = 0

    def step(self) -> None:
        choice = self.rng.random()
        if choice < 0.35:
            target = f"file:src/f{self.rng.randrange(AGENT_FILE_TARGETS)}.py"
            self.locked_call(lambda: self.claims.append(self.store.mutate(
                self.actor, lambda m: verbs.claim(m, target, AGENT_CLAIM_TTL_S))[0][1]))
        elif choice < 0.55 and self.claims:
            claim_id = self.claims.pop()
            self.locked_call(lambda: self.store.mutate(
                self.actor, lambda m: verbs.release(m, claim_id)))
        elif choice < 0.85:
            self.locked_call(lambda: self.store.mutate(self.actor, lambda m: verbs.remember(
                m, "note", f"note by {self.actor}", "body " * self.rng.randrange(1, 40))))
        else:
            page = self.store.read_unseen(self.actor, limit=50)
            self.locked_call(lambda: self.store.ack(self.actor, page["last_seq"]))

    def locked_call(self, call: Any) -> None:
        started = time.perf_counter()
        try:
            call()
        except LockTimeout:
            self.timeouts += 1
            self.waits_s.append(time.perf_counter() - started)
            return
        except (Conflict, NotFound):
            self.refused += 1  # refused under the lock: it waited like any other call
        self.calls_s.append(time.perf_counter() - started)
        self.waits_s.append(self.store.journal.lock.waited_s)


# -- row 3: the MCP transport's floor --------------------------------------------------
def serve_noop() -> int:
    workload.noop_server().run("stdio")
    return 0


# -- row 12: the HTTP server, counted ---------------------------------------------------------
def serve_http_counted(store: str, counters_path: str) -> int:
    """The real ``serve --transport http``. Every Committer made in this process is kept
    (its ``batches`` and ``batched`` are journal_core's own counters) and ``os.fsync`` is
    counted; on SIGUSR1 the counts go to ``counters_path`` (atomically, with the number of
    the request, so the bench knows the answer is fresh)."""
    import signal
    import threading

    from agentjournal.cli import main as cli_main

    from journal_core import commit

    committers: list[commit.Committer] = []
    made = commit.Committer.__init__

    def keep(self: commit.Committer, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        committers.append(self)

    commit.Committer.__init__ = keep  # type: ignore[method-assign]
    fsyncs = [0]
    count_lock = threading.Lock()
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        with count_lock:
            fsyncs[0] += 1
        real_fsync(fd)

    os.fsync = counted_fsync
    asked = [0]

    def write_counters(signum: int, frame: object) -> None:
        asked[0] += 1
        data = orjson.dumps({"asked": asked[0], "fsyncs": fsyncs[0],
                             "batches": sum(c.batches for c in committers),
                             "batched": sum(c.batched for c in committers)})
        tmp = f"{counters_path}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, counters_path)

    signal.signal(signal.SIGUSR1, write_counters)
    return cli_main(["--store", store, "serve", "--transport", "http", "--host", "127.0.0.1",
                     "--port", "0", "--actor", "bench"])


# -- row 8: the floor of a wake-up through inotify -------------------------------------------
def inotify_echo(folder: str) -> int:
    """One line on stdout per batch of kernel events in ``folder``, until stdin closes."""
    import select

    from journal_core.inotify import IN_MODIFY, Inotify

    watch = Inotify(folder, IN_MODIFY)
    poller = select.poll()
    poller.register(watch.fileno(), select.POLLIN)
    poller.register(sys.stdin.fileno(), select.POLLIN)
    os.write(1, b"READY\n")
    while True:
        for fd, _ in poller.poll():
            if fd == sys.stdin.fileno():
                return 0
            if watch.read():
                os.write(1, b"W\n")


if __name__ == "__main__":
    raise SystemExit(main())
