"""Doctor (SPEC §12): diagnose, verify, compact, gc, repair, redact.

Every operation reads the journal itself; none trusts meta.json or the projections. The
ones that change files (compact, gc, repair, redact) hold the store lock throughout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from . import clock, limits
from .checkpoint import (
    CheckpointInvalid,
    checkpoint_name,
    list_checkpoints,
    load_checkpoint,
    verify_checkpoint,
)
from .entities import mask_ephemeral
from .ids import FAMILIES
from .meta import load_meta
from .projection import Projections
from .reader import JournalReader
from .replay import State, is_redacted
from .segment import segment_for_seq, segment_name

Progress = Callable[[str, int, int], None]
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p",
    "ceph", "glusterfs", "fuse.glusterfs", "lustre", "afs", "fuse.rclone", "davfs",
    "fuse.s3fs", "fuse.gcsfuse",
})
COUNTER_LEVELS = {
    "dup_conflicts": "ERROR", "payloads_invalid": "WARNING", "dup_seq_writers": "WARNING",
    "rev_overwrites": "WARNING", "rev_gaps": "WARNING", "rev_regressions": "WARNING",
    "unannotated_emissions": "INFO", "seq_repairs": "INFO", "dup_identical": "INFO",
    "torn_tails": "INFO", "fragments_adjudicated": "INFO",
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
    """The whole kept journal read once, from its first kept segment."""

    state: State
    reader: JournalReader
    base_checkpoint: str | None


def scan_journal(store: Any, progress: Progress | None = None) -> Scan:
    """Read every kept segment from its start. If older segments were archived, seed the
    state from a checkpoint that covers them."""
    segments = store.journal.segments()
    reader = JournalReader(store.journal)
    state = State(counters=reader.counters, on_note=reader.adjudicate,
                  resolve_ref=store.blobs.get_payload)
    base = None
    if segments and segments[0] > 1:
        # the oldest checkpoint that covers every archived seq: its head is at or past the
        # seq before the first kept segment (gc never archives past such a checkpoint)
        for head in list_checkpoints(store.fileio, store.checkpoints_dir):
            if head >= segments[0] - 1 and _seed_from_checkpoint(store, head, state):
                base = checkpoint_name(head)
                break
    if progress:
        progress("scan", 0, len(segments))
    for group in reader.read_new(None):
        state.apply_group(group)
    if progress:
        progress("scan", len(segments), len(segments))
    return Scan(state, reader, base)


def _seed_from_checkpoint(store: Any, head: int, state: State) -> bool:
    data = store.fileio.read_file(os.path.join(store.checkpoints_dir, checkpoint_name(head)))
    try:
        load_checkpoint(data or b"", store.store_id, state)
    except CheckpointInvalid:
        return False
    return True


# -- diagnose --------------------------------------------------------------------------
def diagnose(store: Any, *, verify_journal: bool = False,
             progress: Progress | None = None) -> Report:
    report = Report(store=store.root)
    scan = scan_journal(store, progress)
    state, reader = scan.state, scan.reader
    report.head_seq = state.head_seq
    report.segments = len(store.journal.segments())
    report.counters = state.counters.as_dict()
    _judge_counters(report, state, reader)
    _judge_checkpoints(report, store, state)
    for error in state.blob_errors:
        report.add("ERROR", "blob", error)
    _judge_meta(report, store, reader)
    _judge_projections(report, store, state)
    network = network_filesystem(store.root)
    if network:
        report.add("WARNING", "network_fs", f"the store is on a {network} file system: the "
                   "store lock may not exclude writers on other machines")
    if verify_journal:
        verify_against_projections(store, report, progress, scanned=state)
    return report


def _judge_counters(report: Report, state: State, reader: JournalReader) -> None:
    for start in reader.unexplained_ranges():
        segment, begin, end = start
        report.add("ERROR", "corrupt_line", f"{segment_name(segment)} bytes {begin}-{end} are "
                   "not a valid record and no journal note explains them")
    unexplained_txns = state.counters.incomplete_txns - state.counters.incomplete_txns_noted
    if unexplained_txns > 0:
        report.add("WARNING", "incomplete_txn",
                   f"{unexplained_txns} txn(s) dropped for missing records with no note")
    if reader.pending_fragment is not None:
        report.add("INFO", "torn_tail", "the active segment ends in a torn tail; the next "
                   "writer adjudicates it")
    for name, level in COUNTER_LEVELS.items():
        value = state.counters.as_dict()[name]
        if value:
            report.add(level, name, f"{name.replace('_', ' ')}: {value}")


def _judge_checkpoints(report: Report, store: Any, state: State) -> None:
    heads = list_checkpoints(store.fileio, store.checkpoints_dir)
    newest_verified = None
    for head in reversed(heads):
        reason = verify_checkpoint(store.checkpoints_dir, head, store.fileio, store.store_id,
                                   state.checkpoint_refs, store.blobs)
        name = checkpoint_name(head)
        report.checkpoints.append({"file": name, "head_seq": head, "verified": reason is None,
                                   "reason": reason})
        if reason is None:
            newest_verified = newest_verified or name
        elif reason.startswith("no checkpoint_ref"):
            segments = store.journal.segments()
            if segments and head < segments[0]:
                reason = "superseded: its checkpoint_ref was archived by gc"
                report.checkpoints[-1]["reason"] = reason
            report.add("INFO", "orphan_checkpoint", f"{name}: {reason}")
        else:
            fallback = "; rebuild falls back to an older checkpoint"
            report.add("ERROR" if "blob" in reason else "WARNING", "checkpoint_failed",
                       f"{name}: {reason}{fallback if newest_verified is None else ''}")


def _judge_meta(report: Report, store: Any, reader: JournalReader) -> None:
    meta = load_meta(store.fileio, store.meta_path)
    if meta is None:
        report.add("INFO", "meta_rebuilt", "meta.json is missing or unreadable; the next "
                   "writer rebuilds it from the journal")
    elif meta.next_seq < reader.tail_seq() + 1:
        report.add("INFO", "meta_behind", f"meta.json next_seq {meta.next_seq} is behind the "
                   f"tail ({reader.tail_seq()}); the next writer repairs it")


def _judge_projections(report: Report, store: Any, state: State) -> None:
    for family in FAMILIES:
        for item_id in store.projections.ids(family):
            if store.projections.read(family, item_id).status == "unreadable":
                report.add("ERROR", "projection_unreadable",
                           f"state/{family}/{item_id}.json does not parse", f"{family}/{item_id}")


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
def verify_against_projections(store: Any, report: Report,
                               progress: Progress | None = None,
                               scanned: State | None = None) -> None:
    """Rebuild in a temp folder from checkpoint + journal (what a cold open computes) and
    diff it with the live projections, ephemeral fields masked; each divergent entity is
    listed. When a checkpoint was used, the journal replayed from its first kept segment is
    diffed too, so damage older than the checkpoint is named as well."""
    _, cold = store.rebuild_state()
    sources = [("checkpoint+journal", cold)]
    if scanned is not None and cold.floor_seq > 0:
        sources.append(("journal replay", scanned))
    for label, state in sources:
        with tempfile.TemporaryDirectory(prefix="agentjournal-verify-") as scratch:
            rebuilt = Projections(os.path.join(scratch, "state"), store.fileio)
            live = [e for family in FAMILIES for e in state.live(family)]
            for index, entity in enumerate(live, start=1):
                if entity.payload is not None:
                    rebuilt.write(entity, entity.payload, equal_ok=True)
                if progress and (index % 500 == 0 or index == len(live)):
                    progress(f"verify ({label})", index, len(live))
            _diff_projections(store, rebuilt, report, label)


def _diff_projections(store: Any, rebuilt: Projections, report: Report, label: str) -> None:
    """Compare every live projection file with the rebuilt one, ephemeral fields masked."""
    for family in FAMILIES:
        for item_id in sorted(set(store.projections.ids(family)) | set(rebuilt.ids(family))):
            live = store.projections.read(family, item_id)
            expected = rebuilt.read(family, item_id)
            why = _divergence(family, live.doc, live.status, expected.doc)
            if why:
                _divergent(report, family, item_id, f"{why} ({label})")


def _divergence(family: str, doc: dict[str, Any] | None, status: str,
                expected: dict[str, Any] | None) -> str | None:
    if status == "missing":
        return "projection missing"
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


def _divergent(report: Report, family: str, item_id: str, why: str) -> None:
    report.divergent.append({"item_type": family, "item_id": item_id, "reason": why})
    report.add("ERROR", "divergent_projection", f"{family} {item_id}: {why}",
               f"{family}/{item_id}")


def _json(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _now() -> str:
    return clock.to_rfc3339(clock.utc_now())


def _move(store: Any, src: str, dst: str) -> None:
    store.fileio.mkdir(os.path.dirname(dst))
    store.fileio.rename(src, dst)
    store.fileio.fsync_dir(os.path.dirname(dst))
    store.fileio.fsync_dir(os.path.dirname(src))


def copy_tree(src: str, dst: str) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)


__all__ = [
    "Finding", "Report", "diagnose", "network_filesystem", "scan_journal", "segment_for_seq",
]


# -- compact, gc ------------------------------------------------------------------------
def compact(store: Any, actor: str) -> list[str]:
    ref = store.compact(actor)
    return [f"wrote checkpoint {ref['file']} at seq {ref['head_seq']} "
            f"({ref['entities']} live entities, {ref['bytes']} bytes)"]


def verified_checkpoints(store: Any, state: State) -> list[int]:
    return [
        head for head in list_checkpoints(store.fileio, store.checkpoints_dir)
        if verify_checkpoint(store.checkpoints_dir, head, store.fileio, store.store_id,
                             state.checkpoint_refs, store.blobs) is None
    ]


def gc(store: Any, actor: str, progress: Progress | None = None) -> list[str]:
    """Park segments and blobs superseded by verified checkpoints in archive/, never past
    the second-newest verified checkpoint, never the active segment; nothing is deleted."""
    actions: list[str] = []
    with store.locked_maintenance(actor):
        scan = scan_journal(store)
        verified = verified_checkpoints(store, scan.state)
        if len(verified) < 2:
            return ["gc: fewer than two verified checkpoints; nothing archived "
                    "(run doctor --compact, or wait for segment rolls)"]
        boundary = verified[-2]
        segments = store.journal.segments()
        archive_dir = os.path.join(store.events_dir, "archive")
        kept = list(segments)
        for index, segment in enumerate(segments[:-1]):
            if segments[index + 1] - 1 <= boundary:
                _move(store, store.journal.path(segment), store.journal.archive_path(segment))
                kept.remove(segment)
                actions.append(f"archived {segment_name(segment)} (all seqs <= {boundary})")
            if progress:
                progress("gc segments", index + 1, len(segments) - 1)
        needed = _blobs_referenced(store, kept, verified[-2:])
        for sha in store.blobs.all_hashes():
            if sha not in needed:
                _move(store, store.blobs.path(sha), os.path.join(archive_dir, "blobs",
                                                                  sha[:2], sha))
                actions.append(f"archived blob {sha}")
    if not actions:
        actions.append(f"gc: nothing to archive (kept everything after seq {boundary})")
    store.reload()
    return actions


def _blobs_referenced(store: Any, segments: list[int], checkpoints: list[int]) -> set[str]:
    from .reader import scan_groups

    needed: set[str] = set()
    if segments:
        for group in scan_groups(store.journal, segments[0], 0):
            for record in group:
                ref = record.get("payload_ref")
                if ref:
                    needed.add(str(ref["sha256"]))
    for head in checkpoints:
        scratch = State()
        if _seed_from_checkpoint(store, head, scratch):
            for family in FAMILIES:
                for entity in scratch.families[family].values():
                    if entity.payload_ref:
                        needed.add(str(entity.payload_ref["sha256"]))
    return needed


# -- repair -----------------------------------------------------------------------------
def repair(store: Any, actor: str, progress: Progress | None = None) -> list[str]:
    """Offline, under the lock: park unexplained corrupt bytes and bad projections in
    quarantine/, then rebuild meta.json and every projection from the journal."""
    actions: list[str] = []
    quarantine = os.path.join(store.events_dir, "quarantine")
    with store.locked_maintenance(actor):
        scan = scan_journal(store, progress)
        for segment, start, end in scan.reader.unexplained_ranges():
            actions.append(_park_bytes(store, quarantine, segment, start, end))
        fragment = scan.reader.pending_fragment
        if fragment is not None:
            actions.append(_park_bytes(store, quarantine, fragment.segment, fragment.start,
                                       fragment.end, terminate=True))
        store.reload()
        report = Report(store=store.root)
        verify_against_projections(store, report)
        for row in report.divergent:
            family, item_id = row["item_type"], row["item_id"]
            path = store.projections.path(family, item_id)
            if os.path.exists(path):
                target = os.path.join(quarantine, "state", family, f"{item_id}.json")
                _move(store, path, target)
                actions.append(f"parked state/{family}/{item_id}.json ({row['reason']})")
        store.fileio.unlink(store.meta_path)
        written = store.rebuild_projections()
        actions.append(f"rebuilt meta.json and {written} projection(s) from the journal")
    return actions


def _park_bytes(store: Any, quarantine: str, segment: int, start: int, end: int,
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
@dataclass
class _Located:
    path: str
    start: int
    end: int
    record: dict[str, Any]


def redact(store: Any, seqs: list[int], reason: str, actor: str) -> list[str]:
    """Replace the payloads of the records at ``seqs`` with a redaction marker: the only
    rewrite of a sealed segment. Seq, writer and byte length are kept; projections,
    checkpoints and blobs holding the payload are rewritten or removed; a journal_note
    redaction records who and why."""
    from .errors import InvalidArgument

    if not seqs or not reason.strip():
        raise InvalidArgument("redact needs at least one seq and a --reason")
    if len(reason) > limits.reason_chars_max:
        raise InvalidArgument(f"--reason is {len(reason)} characters; at most "
                              f"{limits.reason_chars_max}")
    wanted = set(seqs)
    if len(wanted) > limits.redact_seqs_max:
        raise InvalidArgument(f"{len(wanted)} seqs in one redaction; at most "
                              f"{limits.redact_seqs_max} (run it in parts)")
    with store.locked_maintenance(actor):
        located = _locate(store, wanted)
        missing = sorted(wanted - {hit.record["seq"] for hit in located})
        if missing:
            raise InvalidArgument(f"no entity record with seq {missing} in the journal")
        active = store.journal.path(store.journal.segments()[-1])
        if any(hit.path == active for hit in located):
            store.append_notes(actor, [], roll=True)  # seal the active segment first
        marker = {"redacted": {"by": actor, "at": _now()}}
        # Write-ahead: the note (with its marker) first. Every process replaying it drops
        # the payload from memory, so a checkpoint written at a later roll -- ours while
        # appending the refs below, or another process's -- cannot bring it back, and a
        # redaction cut short by an error reads as redacted everywhere until it is rerun.
        store.append_notes(actor, [("journal_note", {
            "kind": "redaction", "seqs": sorted(wanted), "by": actor, "reason": reason,
            "marker": marker}, f"redacted {len(wanted)} record(s)")])
        blobs = _rewrite_segments(store, located, marker)
        refs = _rewrite_checkpoints(store, wanted, marker)
        notes = [("checkpoint_ref", ref, f"checkpoint {ref['file']} rewritten by redaction")
                 for ref in refs]
        if notes:
            store.append_notes(actor, notes)
        store.reload()
        removed = _drop_blobs(store, blobs)
        rewritten = store.rewrite_redacted_projections(wanted)
    return ([f"redacted seq {seq}" for seq in sorted(wanted)]
            + [f"rewrote checkpoint {ref['file']}" for ref in refs]
            + [f"removed blob {sha}" for sha in removed]
            + [f"rewrote projection {key}" for key in rewritten])


def _locate(store: Any, wanted: set[int]) -> list[_Located]:
    from .errors import InvalidArgument
    from .reader import _parse, _split_lines

    hits: list[_Located] = []
    paths = [store.journal.path(s) for s in store.journal.segments()]
    archive = os.path.join(store.events_dir, "archive")
    paths += sorted(os.path.join(archive, n) for n in store.fileio.listdir(archive)
                    if n.startswith("seg-"))
    for path in paths:
        data = store.fileio.read_file(path) or b""
        lines, _ = _split_lines(data)
        for line in lines:
            record = _parse(line.raw)
            if record is None or record["seq"] not in wanted:
                continue
            if "payload" not in record and "payload_ref" not in record:
                raise InvalidArgument(f"seq {record['seq']} is a {record['action']} record with "
                                      "no payload; only entity records can be redacted")
            if record["item_type"] == "journal":
                raise InvalidArgument(f"seq {record['seq']} is a journal record, not an entity")
            hits.append(_Located(path, line.start, line.end, record))
    return hits


def _rewrite_segments(store: Any, located: list[_Located], marker: dict[str, Any]) -> set[str]:
    from .errors import InvalidArgument

    blobs: set[str] = set()
    by_path: dict[str, list[_Located]] = {}
    for hit in located:
        by_path.setdefault(hit.path, []).append(hit)
    for path, hits in by_path.items():
        data = bytearray(store.fileio.read_file(path) or b"")
        for hit in hits:
            record = dict(hit.record)
            if record.get("payload_ref"):
                blobs.add(str(record.pop("payload_ref")["sha256"]))
            record["payload"] = marker
            if record.get("summary"):
                record["summary"] = "redacted"  # summaries quote titles: the secret too
            line = orjson.dumps(record)
            width = hit.end - hit.start
            if len(line) > width:
                raise InvalidArgument(f"seq {record['seq']}: the redaction marker is longer "
                                      "than the record; shorten the actor name")
            data[hit.start:hit.end] = line + b" " * (width - len(line))
        store.fileio.write_atomic(path, bytes(data))
    return blobs


def _rewrite_checkpoints(store: Any, wanted: set[int], marker: dict[str, Any]
                         ) -> list[dict[str, Any]]:
    import hashlib

    refs = []
    for head in list_checkpoints(store.fileio, store.checkpoints_dir):
        name = checkpoint_name(head)
        path = os.path.join(store.checkpoints_dir, name)
        doc = orjson.loads(store.fileio.read_file(path) or b"{}")
        changed = False
        for rows in doc.get("entities", {}).values():
            for row in rows.values():
                if row.get("seq") in wanted and ("payload" in row or "payload_ref" in row):
                    row.pop("payload_ref", None)
                    row["payload"] = marker
                    changed = True
        if changed:
            data = _json(doc)
            store.fileio.write_atomic(path, data)
            live = sum(1 for rows in doc["entities"].values() for row in rows.values()
                       if row.get("action") != "delete")
            refs.append({"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                         "head_seq": head, "entities": live, "bytes": len(data), "blobs": []})
    return refs


def _drop_blobs(store: Any, blobs: set[str]) -> list[str]:
    """Remove redacted blobs nothing else references (redaction is the one deletion)."""
    if not blobs:
        return []
    still = _blobs_referenced(store, store.journal.segments(),
                              list_checkpoints(store.fileio, store.checkpoints_dir))
    removed = []
    for sha in sorted(blobs - still):
        store.fileio.unlink(store.blobs.path(sha))
        store.fileio.unlink(os.path.join(store.events_dir, "archive", "blobs", sha[:2], sha))
        removed.append(sha)
    return removed
