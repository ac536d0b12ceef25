"""A store's health in plain words: the journal's status and doctor's report, and one
sentence a person can act on ("Healthy", "Needs attention", "Problems"), with the command
to run next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .doctor import Finding, Report, diagnose
from .queries import journal_status
from .store import Store

VERDICT_HEALTHY = "healthy"
VERDICT_ATTENTION = "attention"
VERDICT_PROBLEMS = "problems"


@dataclass
class Health:
    status: dict[str, Any]  # queries.journal_status
    report: Report  # doctor.diagnose (no --verify-journal)
    verdict: str  # healthy | attention | problems
    words: str  # the verdict as a sentence, with what to do


def health(store: Store) -> Health:
    """Status and doctor's diagnosis (it reads the whole kept journal once)."""
    status = journal_status(store)
    report = diagnose(store)
    verdict, words = judge(status, report)
    return Health(status, report, verdict, words)


def judge(status: dict[str, Any], report: Report) -> tuple[str, str]:
    errors = [f for f in report.findings if f.level == "ERROR"]
    warnings = [f for f in report.findings if f.level == "WARNING"]
    where = f"the journal reads to seq {status['head_seq']}"
    checkpoint = status.get("checkpoint")
    since = (f", newest checkpoint at seq {checkpoint['head_seq']}" if checkpoint
             else ", no checkpoint yet (one is written when a segment rolls)")
    if errors:
        return VERDICT_PROBLEMS, (
            f"Problems: {_listed(errors)}; {where}. Run `agentjournal doctor` for the "
            "details, then `agentjournal doctor --repair` with every agent stopped to park "
            "what is damaged.")
    if warnings:
        return VERDICT_ATTENTION, (
            f"Needs attention: {_listed(warnings)}; {where}{since}. Run `agentjournal "
            "doctor` for the details.")
    stale = " (this read is a little behind: the journal grew faster than it caught up)" \
        if status.get("stale") else ""
    return VERDICT_HEALTHY, f"Healthy: {where}{since}, and doctor found nothing wrong{stale}."


def _listed(findings: list[Finding]) -> str:
    codes = sorted({f.code.replace("_", " ") for f in findings})
    return f"{len(findings)} finding(s) ({', '.join(codes)})"


__all__ = ["VERDICT_ATTENTION", "VERDICT_HEALTHY", "VERDICT_PROBLEMS", "Health", "health",
           "judge"]
