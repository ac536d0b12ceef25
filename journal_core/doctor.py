"""Doctor (docs/design.md, "Doctor"): diagnose, verify, compact, gc, repair, redact.

Every operation reads the journal itself; none trusts meta.json or the projections. The
ones that change files (compact, gc, repair, redact) hold the store lock throughout.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from . import clock, limits
from .blob import blob_ref
from .checkpoint import (
    CheckpointInvalid,
    checkpoint_name,
    dump_doc,
    load_checkpoint,
    read_doc,
    verify_checkpoint,
)
from .entities import MODELS, mask_ephemeral, redact_payload, validate_payload
from .errors import InvalidArgument, StoreError
from .journal import Record
from .layout import worktree_root
from .opening import new_state
from .projection import Projections
from .record import encode_built, payload_bytes
from .replay import State, is_redacted
from .segment import segment_name
from .store import Store
from .vocabulary import FAMILIES

Progress = Callable[[str, int, int], None]
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p",
    "ceph", "glusterfs", "fuse.glusterfs", "lustre", "afs", "fuse.rclone", "davfs",
    "fuse.s3fs", "fuse.gcsfuse",
})
# Every counter, with the level a non-zero value is reported at. status and doctor show
# the same counters under the same names (JournalCounters' fields).
COUNTER_LEVELS = {
    "lines_skipped": None,  # reported as corrupt_line findings, with their byte ranges
    "torn_tails": "INFO", "fragments_adjudicated": "INFO", "incomplete_txns": None,
    "incomplete_txns_noted": "INFO", "dup_identical": "INFO", "dup_conflicts": "ERROR",
    "dup_seq_writers": "WARNING", "rev_overwrites": "WARNING", "rev_gaps": "WARNING",
    "rev_regressions": "WARNING", "payloads_invalid": "WARNING",
    "unannotated_emissions": "INFO", "seq_repairs": "INFO",
}


@dataclass
class Finding:
    level: str  # ERROR | WARNING | INFO
    code: str
    message: str
    item: str | None = None


@dataclass
class Report:
    store: str
    head_seq: int = 0
    segments: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    divergent: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    verified: dict[str, Any] | None = None  # what --verify-journal compared

    def add(self, level: str, code: str, message: str, item: str | None = None) -> None:
        self.findings.append(Finding(level, code, message, item))

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.level in ("ERROR", "WARNING")]

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["healthy"] = not self.problems
        return doc


@dataclass
class Scan:
    """The whole kept journal read once, from its first kept record."""

    state: State
    follower: Any
    base_checkpoint: str | None


def scan_journal(store: Store, progress: Progress | None = None) -> Scan:
    """Read every kept record from the start. If older segments were archived, seed the
    state from the oldest checkpoint that covers them."""
    journal = store.journal
    state = new_state(store.store_id, store.blobs.get_payload)
    base = None
    after = 0
    oldest = journal.oldest_seq()
    if oldest > 1:
        for head in store.checkpoints.heads():
            if head >= oldest - 1 and _seed(store, head, state):
                base, after = checkpoint_name(head), head
                break
    follower = journal.follower(after, None, counters=state.counters)
    sizes = _segment_bytes(journal)
    total = max(1, sum(sizes.values()))
    if progress:
        progress("scan", 0, total)
    while True:
        groups = follower.poll(limits.scan_chunk_records)
        for group in groups:
            state.apply_group(group)
        if progress:
            progress("scan", min(total, _bytes_done(follower, sizes)), total)
        if not groups and follower.caught_up():
            break
    if progress:
        progress("scan", total, total)
    close = getattr(follower, "close", None)
    if close is not None:
        close()  # what it found stays readable; its fd goes
    return Scan(state, follower, base)


def _segment_bytes(journal: Any) -> dict[int, int]:
    """The size of each segment a scan reads (local backend), for a progress bar that
    moves within a segment as well as between them; {} where the journal has no files."""
    path = getattr(journal, "path", None)
    segments = getattr(journal, "segments", None)
    if path is None or segments is None:
        return {}
    sizes: dict[int, int] = {}
    for segment in segments():
        try:
            sizes[segment] = os.stat(path(segment)).st_size
        except OSError:
            continue
    return sizes


def _bytes_done(follower: Any, sizes: dict[int, int]) -> int:
    segment = getattr(follower, "segment", None)
    if segment is None or not sizes:
        return 0
    return sum(size for part, size in sizes.items() if part < segment) + int(
        getattr(follower, "offset", 0))


def _seed(store: Store, head: int, state: State) -> bool:
    try:
        load_checkpoint(store.checkpoints.read(head) or b"", store.store_id, state)
    except CheckpointInvalid:
        return False
    return True


# -- diagnose --------------------------------------------------------------------------
def diagnose(store: Store, *, verify_journal: bool = False,
             progress: Progress | None = None) -> Report:
    report = Report(store=store.root)
    scan = scan_journal(store, progress)
    state = scan.state
    report.head_seq = state.head_seq
    report.segments = store.journal.stats().parts
    report.counters = state.counters.as_dict()
    _judge_counters(report, scan)
    _judge_checkpoints(report, store, state)
    for error in state.blob_errors:
        report.add("ERROR", "blob", error)
    for key in store.missing_content:
        report.add("ERROR", "content_missing", f"{key}: its blob is missing and no projection "
                   "holds the same content; it is served as 'content missing'", key)
    _judge_projections(report, store, state)
    _judge_links(report, store)
    _judge_layout(report, store)
    network = network_filesystem(store.root)
    if network:
        report.add("WARNING", "network_fs", f"the store is on a {network} file system: the "
                   "store lock may not exclude writers on other machines")
    if store.read_only:
        report.add("INFO", "read_only", "the store is read-only: it can be inspected, nothing "
                   "can be written (no repair, no compact)")
    if verify_journal:
        verify_against_projections(store, report, progress, scanned=state)
    return report


def _judge_counters(report: Report, scan: Scan) -> None:
    state, follower = scan.state, scan.follower
    scanner = getattr(follower, "scanner", None)
    for part, begin, end in getattr(scanner, "bad_ranges", []):
        if (segment_name(part), begin) in state.adjudicated:
            continue
        report.add("ERROR", "corrupt_line", f"{segment_name(part)} bytes {begin}-{end} are "
                   "not a valid record and no journal note explains them")
    unexplained = state.counters.incomplete_txns - state.counters.incomplete_txns_noted
    if unexplained > 0:
        report.add("WARNING", "incomplete_txn",
                   f"{unexplained} txn(s) dropped for missing records with no note")
    if getattr(follower, "pending_fragment", None) is not None:
        report.add("INFO", "torn_tail", "the active segment ends in a torn tail; the next "
                   "writer adjudicates it")
    backfilled = _backfilled_entities(state)
    for name, level in COUNTER_LEVELS.items():
        value = state.counters.as_dict()[name]
        if not value or level is None:
            continue
        if name == "rev_gaps" and value <= backfilled:
            report.add("INFO", name, f"rev gaps: {value}, all from backfilled entities (a "
                       "clone restarts its journal at each entity's last rev: expected)")
            continue
        report.add(level, name, f"{name.replace('_', ' ')}: {value}")


def _backfilled_entities(state: State) -> int:
    """Entities a journal restart backfilled at their projection's rev (a rev gap each)."""
    return sum(1 for family in FAMILIES for e in state.families[family].values()
               if e.action == "backfill" and e.rev > 1)


def _judge_checkpoints(report: Report, store: Store, state: State) -> None:
    newest_verified = None
    oldest_kept = store.journal.oldest_seq()
    for head in reversed(store.checkpoints.heads()):
        reason = verify_checkpoint(store.checkpoints, head, store.store_id,
                                   state.checkpoint_refs, store.blobs)
        name = checkpoint_name(head)
        entry = {"file": name, "head_seq": head, "verified": reason is None, "reason": reason}
        if reason is None:
            newest_verified = newest_verified or name
        elif reason.startswith("no checkpoint_ref") and head < oldest_kept:
            entry["reason"] = reason = ("superseded: older than the journal kept here (gc "
                                        "archived its segments, or a clone restarted after it)")
        elif reason.startswith("no checkpoint_ref"):
            report.add("INFO", "orphan_checkpoint", f"{name}: {reason}")
        else:
            fallback = "; rebuild falls back to an older checkpoint"
            report.add("ERROR" if "blob" in reason else "WARNING", "checkpoint_failed",
                       f"{name}: {reason}{fallback if newest_verified is None else ''}")
        report.checkpoints.append(entry)


def _judge_projections(report: Report, store: Store, state: State) -> None:
    projections = store.projections
    if projections is None:
        return
    meta = _meta_applied(store)
    behind = 0
    for family in FAMILIES:
        for item_id in projections.ids(family):
            found = projections.read(family, item_id)
            if found.status == "unreadable":
                report.add("ERROR", "projection_unreadable",
                           f"state/{family}/{item_id}.json does not parse", f"{family}/{item_id}")
                continue
            entity = state.entity(family, item_id)
            if found.rev is None or entity is None or entity.deleted:
                continue
            if found.rev < entity.rev and entity.changed_seq <= meta.get(family, 0):
                behind += 1
                report.add("WARNING", "projection_behind",
                           f"state/{family}/{item_id}.json is at rev {found.rev}, behind the "
                           f"journal's rev {entity.rev} (regressed by git checkout, stash or a "
                           "restore?); the next writer or `doctor --repair` heals it",
                           f"{family}/{item_id}")
    pending = sum(1 for family in FAMILIES for e in state.families[family].values()
                  if e.changed_seq > meta.get(family, 0))
    if pending:
        report.add("INFO", "projections_pending", f"{pending} entity change(s) not yet "
                   "written to state/ (projections are caches, written after the journal)")


def _meta_applied(store: Store) -> dict[str, int]:
    from .meta import load_meta

    meta = load_meta(store.fileio, store.meta_path)
    return meta.applied if meta is not None else {}


def store_links(store: Store) -> list[str]:
    """Symbolic links inside the store's folders (the store makes none; it never follows
    one): reported, left alone."""
    found: list[str] = []
    if store.location is None:
        return []  # not a folder of files: nothing can be a link
    roots = [store.root]
    face = store.location.face
    if face is not None:
        roots.append(face)
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in dirs + files:
                path = os.path.join(folder, name)
                try:
                    if stat.S_ISLNK(os.lstat(path).st_mode):
                        found.append(path)
                except OSError:
                    continue
            if len(found) > limits.links_reported_max:
                return found
    return found


def _judge_links(report: Report, store: Store) -> None:
    for path in store_links(store)[: limits.links_reported_max]:
        report.add("WARNING", "symlink", f"{path} is a symlink (to {_readlink(path)!r}); the "
                   "store never follows a link it did not make. Remove it, or `doctor "
                   "--repair` parks it in quarantine/")


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _judge_layout(report: Report, store: Store) -> None:
    if store.location is not None and store.location.kind == "folder" and \
            worktree_root(os.path.dirname(store.root)):
        report.add("INFO", "journal_in_worktree",
                   f"the journal lives in the git working tree ({store.root}): `git clean "
                   "-fdx` deletes its machine files, journal included. A store made by "
                   "`agentjournal init` in the repository lives in the git common dir, where "
                   "git never touches it (docs/operations.md, 'Moving a store')")


def network_filesystem(path: str, mounts_file: str = "/proc/mounts") -> str | None:
    """The file-system type of ``path`` when it is a network one (best effort)."""
    try:
        with open(mounts_file, encoding="utf-8") as handle:
            rows = [line.split() for line in handle]
    except OSError:
        return None
    real = os.path.realpath(path)
    best, best_type = "", ""
    for row in rows:
        if len(row) >= 3 and (real == row[1] or real.startswith(row[1].rstrip("/") + "/")) \
                and len(row[1]) >= len(best):
            best, best_type = row[1], row[2]
    if best_type in NETWORK_FILESYSTEMS or best_type.startswith("fuse.sshfs"):
        return best_type
    return None


# -- verify-journal --------------------------------------------------------------------
def verify_against_projections(store: Store, report: Report, progress: Progress | None = None,
                               scanned: State | None = None) -> None:
    """Rebuild from checkpoint + journal (what a cold open computes) and diff it with the
    projections, ephemeral fields masked; each divergent entity is listed. When a checkpoint
    was used, the journal replayed from its first kept record is diffed too, so damage older
    than the checkpoint is named as well. Payloads are validated fully here."""
    cold = store.rebuild_state()
    sources = [("checkpoint+journal", cold)]
    if scanned is not None and cold.floor_seq > 0:
        sources.append(("journal replay", scanned))
    checked = 0
    for label, state in sources:
        checked = _verify_one(store, report, label, state, progress)
    report.verified = {
        "entities": checked, "head_seq": cold.head_seq,
        "checkpoint": checkpoint_name(cold.floor_seq) if cold.floor_seq else None,
        "against": [label for label, _ in sources],
    }
    _validate_payloads(report, cold)


def _verify_one(store: Store, report: Report, label: str, state: State,
                progress: Progress | None) -> int:
    projections = store.projections
    if projections is None:
        return 0
    with tempfile.TemporaryDirectory(prefix="agentjournal-verify-") as scratch:
        rebuilt = Projections(os.path.join(scratch, "state"), store.fileio)
        rebuilt.local_origin = store.store_id
        live = [e for family in FAMILIES for e in state.live(family)]
        for index, entity in enumerate(live, start=1):
            if entity.payload is not None:
                rebuilt.write(entity, entity.payload, equal_ok=True)
            if progress and (index % 500 == 0 or index == len(live)):
                progress(f"verify ({label})", index, len(live))
        _diff_projections(projections, rebuilt, report, label)
        return len(live)


def _validate_payloads(report: Report, state: State) -> None:
    for family in FAMILIES:
        for entity in state.live(family):
            payload = entity.payload
            if payload is None or (is_redacted(payload) and "schema_version" not in payload):
                continue
            try:
                validate_payload(family, payload)
            except InvalidArgument as exc:
                report.add("WARNING", "payload_invalid",
                           f"{family} {entity.item_id} rev {entity.rev}: {exc}",
                           f"{family}/{entity.item_id}")


def _diff_projections(live: Projections, rebuilt: Projections, report: Report,
                      label: str) -> None:
    """Compare every live projection file with the rebuilt one, ephemeral fields masked."""
    for family in FAMILIES:
        for item_id in sorted(set(live.ids(family)) | set(rebuilt.ids(family))):
            found = live.read(family, item_id)
            expected = rebuilt.read(family, item_id)
            why = _divergence(family, found.doc, found.status, expected.doc)
            if why:
                report.divergent.append({"item_type": family, "item_id": item_id,
                                         "reason": f"{why} ({label})"})
                report.add("ERROR", "divergent_projection", f"{family} {item_id}: {why} "
                           f"({label})", f"{family}/{item_id}")


def _divergence(family: str, doc: dict[str, Any] | None, status: str,
                expected: dict[str, Any] | None) -> str | None:
    if status == "missing":
        return "projection missing"
    if status == "link":
        return "projection is a symbolic link (never written through)"
    if status == "unreadable" or doc is None:
        return "projection does not parse"
    if expected is None:
        return "projection of an entity the journal does not hold (deleted or unknown)"
    if doc.get("entity_rev") != expected["entity_rev"]:
        return (f"projection at rev {doc.get('entity_rev')}, journal at rev "
                f"{expected['entity_rev']}")
    payload, journal_payload = doc.get("payload") or {}, expected["payload"]
    if is_redacted(journal_payload) or is_redacted(payload):
        return None if payload == journal_payload else "redaction not reflected"
    if mask_ephemeral(family, payload) != mask_ephemeral(family, journal_payload):
        return f"projection differs from the journal at rev {expected['entity_rev']}"
    return None


def _now() -> str:
    return clock.to_rfc3339(clock.utc_now())


# -- compact, gc ------------------------------------------------------------------------
def compact(store: Store, actor: str) -> list[str]:
    ref = store.compact(actor)
    return [f"wrote checkpoint {ref['file']} at seq {ref['head_seq']} "
            f"({ref['entities']} live entities, {ref['bytes']} bytes)"]


def verified_checkpoints(store: Store, state: State) -> list[int]:
    return [
        head for head in store.checkpoints.heads()
        if verify_checkpoint(store.checkpoints, head, store.store_id, state.checkpoint_refs,
                             store.blobs) is None
    ]


def gc(store: Store, actor: str, progress: Progress | None = None) -> list[str]:
    """Park segments, blobs and checkpoints superseded by verified checkpoints in archive/,
    never past the second-newest verified checkpoint, never the active segment; nothing is
    deleted."""
    actions: list[str] = []
    with store.locked_maintenance(actor):
        scan = scan_journal(store, progress)
        verified = verified_checkpoints(store, scan.state)
        actions += _archive_unusable_checkpoints(store, verified)
        if len(verified) < 2:
            return [*actions, "gc: fewer than two verified checkpoints; no segment archived "
                    "(run doctor --compact, or wait for segment rolls)"]
        boundary = verified[-2]
        for name in store.journal.archive_through(boundary, actor):
            actions.append(f"archived {name} (all seqs <= {boundary})")
        kept_from = store.journal.oldest_seq()
        for head in store.checkpoints.heads():
            if head < boundary and head < kept_from and store.checkpoints.archive(head):
                actions.append(f"archived {checkpoint_name(head)} (superseded by "
                               f"{checkpoint_name(boundary)})")
        needed = _blobs_referenced(store, verified[-2:])
        for sha in store.blobs.all_hashes():
            if sha not in needed:
                store.blobs.archive(sha)
                actions.append(f"archived blob {sha}")
    if not actions:
        actions.append(f"gc: nothing to archive (kept everything after seq {boundary})")
    store.reload()
    return actions


def _archive_unusable_checkpoints(store: Store, verified: list[int]) -> list[str]:
    """Checkpoints older than the kept journal that do not verify (a clone's, from before
    its journal restarted): nothing can replay forward from them, so they go to archive/."""
    kept_from = store.journal.oldest_seq()
    actions = []
    for head in store.checkpoints.heads():
        if head < kept_from - 1 and head not in verified and store.checkpoints.archive(head):
            actions.append(f"archived {checkpoint_name(head)} (superseded: older than the "
                           "journal kept here)")
    return actions


def _blobs_referenced(store: Store, checkpoints: list[int]) -> set[str]:
    needed: set[str] = set()
    for group in store.journal.scan(store.journal.oldest_seq() - 1):
        for record in group.records:
            ref = record.get("payload_ref")
            if ref:
                needed.add(str(ref["sha256"]))
    for head in checkpoints:
        scratch = State()
        if _seed(store, head, scratch):
            for family in FAMILIES:
                for entity in scratch.families[family].values():
                    if entity.payload_ref:
                        needed.add(str(entity.payload_ref["sha256"]))
    return needed


# -- repair -----------------------------------------------------------------------------
def repair(store: Store, actor: str, progress: Progress | None = None) -> list[str]:
    """Offline, under the lock: park unexplained corrupt bytes, bad projections and links in
    quarantine/, then rewrite every projection from the journal."""
    actions: list[str] = []
    quarantine = os.path.join(store.events_dir, "quarantine")
    with store.locked_maintenance(actor):
        scan = scan_journal(store, progress)
        scanner = getattr(scan.follower, "scanner", None)
        for part, start, end in getattr(scanner, "bad_ranges", []):
            if (segment_name(part), start) not in scan.state.adjudicated:
                actions.append(_park_bytes(store, quarantine, part, start, end))
        fragment = getattr(scan.follower, "pending_fragment", None)
        if fragment is not None:
            actions.append(_park_bytes(store, quarantine, fragment.part, fragment.start,
                                       fragment.end, terminate=True))
        for path in store_links(store):
            target = os.path.join(quarantine, "links", os.path.relpath(path, store.root)
                                  .replace(os.sep, "__"))
            _move(store, path, target)
            actions.append(f"parked the link {path} in quarantine/links/")
        store.reload()
        report = Report(store=store.root)
        verify_against_projections(store, report, progress)
        for row in report.divergent:
            family, item_id = str(row["item_type"]), str(row["item_id"])
            kept = store.projections.path(family, item_id) if store.projections else None
            if kept and os.path.lexists(kept):
                target = os.path.join(quarantine, "state", family, f"{item_id}.json")
                _move(store, kept, target)
                actions.append(f"parked state/{family}/{item_id}.json ({row['reason']})")
        for sha in store.heal_blobs():
            actions.append(f"wrote blob {sha} back from its projection (same sha256)")
        written = store.rebuild_projections(progress)
        actions.append(f"rewrote {written} projection(s) and the watermarks from the journal")
    return actions


def _move(store: Store, src: str, dst: str) -> None:
    store.fileio.mkdir(os.path.dirname(dst))
    store.fileio.rename(src, dst)
    store.fileio.fsync_dir(os.path.dirname(dst))
    store.fileio.fsync_dir(os.path.dirname(src))


def _park_bytes(store: Store, quarantine: str, segment: int, start: int, end: int,
                *, terminate: bool = False) -> str:
    """Copy bytes [start, end) of a segment to quarantine/, then blank them in place
    (same length, so no offset moves); the reader skips blank lines."""
    path = store.journal.path(segment)
    data = store.fileio.read_range(path, start, end - start)
    name = f"{segment_name(segment)}.{start}-{end}.bin"
    store.fileio.mkdir(quarantine)
    store.fileio.write_atomic(os.path.join(quarantine, name), data)
    blank = b" " * len(data.rstrip(b"\n")) + (b"\n" if terminate else b"")
    store.fileio.overwrite_at(path, start, blank)
    return (f"parked {len(data)} bytes of {segment_name(segment)} at {start}-{end} "
            f"in quarantine/{name}")


# -- redact -----------------------------------------------------------------------------
def redact(store: Store, seqs: list[int], reason: str, actor: str) -> list[str]:
    """Replace the secret fields of the records at ``seqs`` -- keeping seq, writer, byte
    length and the coordination fields (who holds what, a plan's steps) -- in every file
    that holds them: segments, checkpoints, blobs, projections. Crash-safe at every step:
    the redaction note is written first (every replay redacts from there on), a rewritten
    checkpoint's ref is appended before the file is replaced, the secret's blobs go last.
    Running it again after a crash finishes it."""
    wanted = _check_redaction(seqs, reason)
    with store.locked_maintenance(actor):
        store.refresh()
        located = _locate(store, wanted)
        missing = sorted(wanted - {record["seq"] for record in located})
        if missing:
            raise InvalidArgument(f"no entity record with seq {missing} in the journal")
        active = store.journal.stats().active
        if any(record.get("_segment") == active for record in located):
            store.append_notes(actor, [], roll=True)  # close the active segment first
        marker = {"by": actor, "at": _now()}
        store.append_notes(actor, [("journal_note", {
            "kind": "redaction", "seqs": sorted(wanted), "by": actor, "reason": reason,
            "marker": {"redacted": marker}}, f"redacted {len(wanted)} record(s)")])
        secrets: set[str] = set()
        rewrite = _rewriter(store, marker, secrets)
        store.journal.redact(wanted, rewrite, actor)
        refs = _rewrite_checkpoints(store, wanted, marker, actor)
        store.reload()
        removed = _drop_blobs(store, secrets)
        rewritten = store.rewrite_redacted_projections(wanted)
    return ([f"redacted seq {seq}" for seq in sorted(wanted)]
            + [f"rewrote checkpoint {name}" for name in refs]
            + [f"removed blob {sha}" for sha in removed]
            + [f"rewrote projection {key}" for key in rewritten])


def _check_redaction(seqs: list[int], reason: str) -> set[int]:
    if not seqs or not reason.strip():
        raise InvalidArgument("redact needs at least one seq and a --reason")
    if len(reason) > limits.reason_chars_max:
        raise InvalidArgument(f"--reason is {len(reason)} characters; at most "
                              f"{limits.reason_chars_max}")
    wanted = set(seqs)
    if len(wanted) > limits.redact_seqs_max:
        raise InvalidArgument(f"{len(wanted)} seqs in one redaction; at most "
                              f"{limits.redact_seqs_max} (run it in parts)")
    return wanted


def _locate(store: Store, wanted: set[int]) -> list[Record]:
    found = []
    for record in store.journal.records_at(wanted):
        if record["item_type"] == "journal":
            raise InvalidArgument(f"seq {record['seq']} is a journal record, not an entity")
        if "payload" not in record and "payload_ref" not in record:
            raise InvalidArgument(f"seq {record['seq']} is a {record['action']} record with "
                                  "no payload; only entity records can be redacted")
        found.append(record)
    return found


def _rewriter(store: Store, marker: dict[str, Any],
              secrets: set[str]) -> Callable[[Record, int | None], Record]:
    """How a record is rewritten: the redacted payload inline when it fits the line, else
    in a new blob of its own (a ref is short); the old blob is remembered to be dropped."""

    def rewrite(record: Record, width: int | None) -> Record:
        out = {k: v for k, v in record.items() if not k.startswith("_")}
        family = str(out["item_type"])
        payload = out.pop("payload", None)
        ref = out.pop("payload_ref", None)
        if ref is not None:
            secrets.add(str(ref["sha256"]))
            try:
                payload = store.blobs.get_payload(ref)
            except StoreError:
                payload = {"id": out.get("item_id")}
        if payload is None or (is_redacted(payload) and "schema_version" not in payload):
            payload = {"id": out.get("item_id")}
        redacted = redact_payload(family, payload, {"redacted": marker})
        if out.get("summary"):
            out["summary"] = "redacted"  # summaries quote titles: the secret too
        if out["action"] == "renew":
            out["payload"] = {k: v for k, v in redacted.items() if k in MODELS[family].EPHEMERAL}
            return out
        inline = {**out, "payload": redacted}
        if width is None or len(encode_built(inline)) <= width:
            return inline
        data = payload_bytes(redacted)
        new_ref = blob_ref(data)
        store.blobs.put(data)
        return {**out, "payload_ref": new_ref}

    return rewrite


def _rewrite_checkpoints(store: Store, wanted: set[int], marker: dict[str, Any],
                         actor: str) -> list[str]:
    """Each checkpoint that holds a redacted record: its new ref first, then the file."""
    names = []
    for head in store.checkpoints.heads():
        data = store.checkpoints.read(head)
        if data is None:
            continue
        doc = read_doc(data)
        if not _redact_rows(store, doc, wanted, marker):
            continue
        new = dump_doc(doc)
        import hashlib

        live = sum(1 for rows in doc["entities"].values() for row in rows.values()
                   if row.get("action") != "delete")
        ref = {"file": checkpoint_name(head), "sha256": hashlib.sha256(new).hexdigest(),
               "head_seq": head, "entities": live, "bytes": len(new), "blobs": []}
        store.append_notes(actor, [("checkpoint_ref", ref,
                                    f"checkpoint {ref['file']} rewritten by redaction")])
        store.checkpoints.write(head, new)
        names.append(checkpoint_name(head))
    return names


def _redact_rows(store: Store, doc: dict[str, Any], wanted: set[int],
                 marker: dict[str, Any]) -> bool:
    changed = False
    for family, rows in doc.get("entities", {}).items():
        for row in rows.values():
            if row.get("seq") not in wanted or not ("payload" in row or "payload_ref" in row):
                continue
            payload = row.pop("payload", None)
            ref = row.pop("payload_ref", None)
            if ref is not None:
                try:
                    payload = store.blobs.get_payload(ref)
                except StoreError:
                    payload = None
            row["payload"] = redact_payload(family, payload or {"id": row.get("id")},
                                            {"redacted": marker})
            changed = True
    return changed


def _drop_blobs(store: Store, blobs: set[str]) -> list[str]:
    """Remove redacted blobs nothing else references (redaction is the one deletion)."""
    if not blobs:
        return []
    still = _blobs_referenced(store, store.checkpoints.heads())
    removed = []
    for sha in sorted(blobs - still):
        store.blobs.remove(sha)
        removed.append(sha)
    return removed


__all__ = ["Finding", "Report", "compact", "diagnose", "gc", "network_filesystem", "redact",
           "repair", "scan_journal", "store_links", "verify_against_projections"]
