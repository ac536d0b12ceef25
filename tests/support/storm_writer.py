"""A writer process of the reliability suite (kill storm, concurrency stress).

It opens a store through the public API and runs a mixed workload of real mutations:
memory items, claims on shared file targets (short ttl, so expired claims are taken over),
plan steps claimed and completed, releases, messages, forgets, and (stress mode) reads.

Protocol on stdout, one line each, flushed:
    READY <writer id>          the store is open (and, with --wait-go, GO was read)
    A <json>                   a mutation the API acknowledged; printed AFTER it returned
    DONE <json>                end of a bounded run (--run-s): counts
The parent counts a line as acknowledged only when it received it whole (with its newline).

Run as a script: ``python storm_writer.py --store PATH --actor NAME --seed N [...]``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from journal_core import (
    Committed,
    Conflict,
    LockTimeout,
    NotFound,
    Store,
    StoreConfig,
    StoreIOError,
    queries,
    verbs,
    writer_id,
)

FILE_TARGETS = 6
OPS_MAX_DEFAULT = 100_000
CLAIM_TTL_S = 1  # short: claims of killed writers expire and get taken over


def main() -> int:
    args = parse_args()
    rng = random.Random(args.seed)
    config = StoreConfig(segment_bytes_max=args.segment_bytes) if args.segment_bytes else None
    store = Store(args.store, config)
    workload = Workload(store, args.actor, args.plan, rng, reads=args.reads,
                        tolerated=(StoreIOError,) if args.tolerate_faults else ())
    if args.wait_go:
        emit("READY", writer_id())
        if sys.stdin.readline().strip() != "GO":
            return 1
    else:
        emit("READY", writer_id())
    deadline = time.monotonic() + args.run_s if args.run_s else None
    parent = os.getppid()
    done = 0
    while done < args.ops_max and (deadline is None or time.monotonic() < deadline):
        if os.getppid() != parent:
            return 1  # the driver died without killing us: stop, do not linger
        workload.step()
        done += 1
    emit("DONE", orjson.dumps({"steps": done, "acks": workload.acks,
                               "refused": workload.refused}).decode())
    store.close()
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plan", action="append", default=[], help="plan ids to work on")
    parser.add_argument("--segment-bytes", type=int, default=0)
    parser.add_argument("--ops-max", type=int, default=OPS_MAX_DEFAULT)
    parser.add_argument("--run-s", type=float, default=0.0, help="stop after this long")
    parser.add_argument("--wait-go", action="store_true", help="wait for GO on stdin")
    parser.add_argument("--reads", action="store_true", help="mix reads into the workload")
    parser.add_argument("--tolerate-faults", action="store_true",
                        help="a mutation that failed (not applied, outcome unknown) is not "
                        "acknowledged and the run goes on (a database whose connections the "
                        "storm ends)")
    return parser.parse_args()


def emit(kind: str, text: str) -> None:
    os.write(1, f"{kind} {text}\n".encode())  # one write: the line arrives whole or not


class Workload:
    def __init__(self, store: Store, actor: str, plans: list[str], rng: random.Random,
                 *, reads: bool, tolerated: tuple[type[Exception], ...] = ()) -> None:
        self.store = store
        self.actor = actor
        self.plans = plans
        self.rng = rng
        self.reads = reads
        self.tolerated = tolerated
        self.my_claims: list[str] = []
        self.my_memory: list[str] = []
        self.acks = 0
        self.refused = 0

    def step(self) -> None:
        choices: list[tuple[int, Callable[[], None]]] = [
            (4, self.remember), (4, self.claim_file), (2, self.release),
            (3, self.step_done), (1, self.forget), (2, self.message),
        ]
        if self.reads:
            choices.append((4, self.read))
        weights = [weight for weight, _ in choices]
        action = self.rng.choices([fn for _, fn in choices], weights)[0]
        try:
            action()
        except (Conflict, NotFound, LockTimeout):
            self.refused += 1  # refused: nothing was written, nothing to acknowledge
        except self.tolerated:
            self.refused += 1  # failed: not acknowledged (it may or may not be there)

    def mutate(self, op: str, verb: Callable[[Any], tuple[str, str]],
               **extra: Any) -> tuple[str, str]:
        key, committed = self.store.mutate(self.actor, verb)
        self.ack(op, key, committed, **extra)
        return key

    def ack(self, op: str, key: tuple[str, str], committed: Committed, **extra: Any) -> None:
        self.acks += 1
        line = {"op": op, "w": writer_id(), "actor": self.actor, "seq": committed.first_seq,
                "n": committed.count, "key": list(key),
                "wait": round(getattr(getattr(self.store.journal, "lock", None), "waited_s", 0.0),
                              6), **extra}
        emit("A", orjson.dumps(line).decode())

    # -- the operations -------------------------------------------------------------
    def remember(self) -> None:
        number = self.rng.randrange(10**6)
        _, item_id = self.mutate("remember", lambda m: verbs.remember(
            m, "note", f"note {number} by {self.actor}", "body " * self.rng.randrange(1, 40)))
        self.my_memory.append(item_id)

    def claim_file(self) -> None:
        target = f"file:src/f{self.rng.randrange(FILE_TARGETS)}.py"
        _, claim_id = self.mutate("claim", lambda m: verbs.claim(m, target, CLAIM_TTL_S),
                                  target=target)
        self.my_claims.append(claim_id)

    def release(self) -> None:
        if not self.my_claims:
            return self.claim_file()
        claim_id = self.my_claims.pop(self.rng.randrange(len(self.my_claims)))
        self.mutate("release", lambda m: verbs.release(m, claim_id))

    def step_done(self) -> None:
        if not self.plans:
            return self.remember()
        plan_id = self.rng.choice(self.plans)
        step_id = f"s{self.rng.randrange(1, 9)}"
        target = f"step:{plan_id}/{step_id}"
        _, claim_id = self.mutate("claim", lambda m: verbs.claim(m, target, 60), target=target)
        result = f"done by {self.actor}"
        self.mutate("complete", lambda m: verbs.complete(m, claim_id, result),
                    plan=plan_id, step=step_id, result=result)

    def forget(self) -> None:
        if not self.my_memory:
            return self.remember()
        memory_id = self.rng.choice(self.my_memory)
        self.mutate("forget", lambda m: verbs.forget(m, memory_id, "outdated"))

    def message(self) -> None:
        self.mutate("message", lambda m: verbs.send_message(m, "*", f"hello from {self.actor}"))

    def read(self) -> None:
        family = self.rng.choice(["plan", "claim", "memory", "message"])
        self.store.entities(family)
        queries.work_briefing(self.store, self.actor)


if __name__ == "__main__":
    sys.exit(main())
