"""``agentjournal guard``: a git pre-commit and pre-push hook that stops a commit (or a
push) touching a path another actor holds with a file claim, and ``init --git-hooks``,
which installs it.

- pre-commit: the staged paths (``git diff --cached --name-only -z``);
- pre-push: the paths changed by the commits pushed (git passes ``<local ref> <local oid>
  <remote ref> <remote oid>`` lines on stdin; a new branch's commits are those on no
  remote-tracking branch of that remote).

A path is held by another actor when an active, unexpired file claim of someone else covers
it (journal_core/guard.py; the overlap rules of file claims). The message says who holds
it, until when and how to proceed. ``--warn`` only warns. ``AGENTJOURNAL_GUARD=off`` lets
one command through. The committer's actor is ``$AGENTJOURNAL_ACTOR``, else ``git config
agentjournal.actor``. A repository without a store, or a store that cannot be read, never
blocks a commit (the latter says why on stderr).

``init --git-hooks`` writes ``pre-commit`` and ``pre-push`` into the repository's hooks
folder (``git rev-parse --git-path hooks``, so ``core.hooksPath`` is honored). A hook that
is already there and not ours is kept as ``<name>.agentjournal-chained`` and runs first,
with the same arguments and input; ``--uninstall`` removes only our scripts and puts a
chained hook back.
"""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from journal_core import Store, StoreConfig, StoreError, StoreNotFound, limits
from journal_core.guard import Hold, held_by_others

GUARD_ENV = "AGENTJOURNAL_GUARD"
ACTOR_ENV_NAME = "AGENTJOURNAL_ACTOR"  # the same as the server's (cli.ACTOR_ENV)
GUARD_OFF = ("off", "0", "no", "false")
ACTOR_GIT_CONFIG = "agentjournal.actor"
HOOK_NAMES = ("pre-commit", "pre-push")
MARKER = "# agentjournal-guard"
CHAINED_SUFFIX = ".agentjournal-chained"
PUSH_INPUT_BYTES_MAX = limits.guard_push_input_bytes_max


class GitFailed(Exception):
    """A git command failed; its message says which and why."""


# -- parsers ---------------------------------------------------------------------------------
def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "guard", parents=[common], help="git hook: stop commits touching others' file claims",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run as a git pre-commit or pre-push hook (agentjournal init --git-hooks "
        "installs both): a commit or push that touches a path another actor holds with a "
        "file claim is stopped, with who holds it, until when and how to proceed.",
        epilog=f"  {GUARD_ENV}=off git commit ...   lets one command through\n"
        f"  the committer is ${ACTOR_ENV_NAME}, else `git config {ACTOR_GIT_CONFIG}`",
    )
    parser.add_argument("--hook", choices=HOOK_NAMES, default="pre-commit",
                        help="which git hook this is (default pre-commit)")
    parser.add_argument("--warn", action="store_true", help="only warn; never stop git")
    parser.add_argument("git_args", nargs="*", help=argparse.SUPPRESS)  # pre-push: remote, url


def add_init_arguments(init: argparse.ArgumentParser) -> None:
    init.add_argument("--git-hooks", action="store_true",
                      help="also install the guard as git pre-commit and pre-push hooks "
                      "(existing hooks are chained, never replaced)")
    init.add_argument("--uninstall", action="store_true",
                      help="with --git-hooks: remove what --git-hooks installed")
    init.add_argument("--warn", action="store_true",
                      help="with --git-hooks: hooks that only warn")


# -- the guard -------------------------------------------------------------------------------
def cmd_guard(args: argparse.Namespace) -> int:
    if os.environ.get(GUARD_ENV, "").strip().lower() in GUARD_OFF:
        sys.stderr.write(f"agentjournal guard: skipped ({GUARD_ENV}={os.environ[GUARD_ENV]})\n")
        return 0
    try:
        paths = (staged_paths() if args.hook == "pre-commit"
                 else pushed_paths(read_push_lines(), args.git_args[:1]))
        holds = check(args, paths) if paths else []
    except (GitFailed, StoreError) as exc:
        sys.stderr.write(f"agentjournal guard: not checked ({exc}); git goes on\n")
        return 0
    if not holds:
        return 0
    sys.stderr.write(guard_message(holds, args.hook, args.warn, committer_actor()) + "\n")
    return 0 if args.warn else 1


def check(args: argparse.Namespace, paths: list[str]) -> list[Hold]:
    from .cli import locate

    try:
        location = locate(args)
    except StoreNotFound:
        return []
    if not location.exists:
        return []
    store = Store(location, StoreConfig(projections="off"), create=False)
    try:
        return held_by_others(store, paths[: limits.guard_paths_max], committer_actor())
    finally:
        store.close()


def committer_actor() -> str | None:
    """Who commits: $AGENTJOURNAL_ACTOR, else git config agentjournal.actor."""
    found = os.environ.get(ACTOR_ENV_NAME) or ""
    if not found:
        try:
            found = git("config", "--get", ACTOR_GIT_CONFIG).strip()
        except GitFailed:
            found = ""
    return found or None


def guard_message(holds: list[Hold], hook: str, warn: bool, actor: str | None) -> str:
    what = "this commit stages" if hook == "pre-commit" else "this push changes"
    shown = holds[: limits.guard_holders_shown_max]
    lines = [f"agentjournal guard: {what} {len(holds)} path(s) another agent holds:"]
    lines += [f"  {h.path}: held by {h.holder} ({h.claim_id}, {h.target}) until "
              f"{h.expires_at} ({_minutes(h.left_s)} left)" for h in shown]
    if len(holds) > len(shown):
        lines.append(f"  … and {len(holds) - len(shown)} more")
    holders = ", ".join(dict.fromkeys(repr(h.holder) for h in holds))
    command = "git commit" if hook == "pre-commit" else "git push"
    if warn:
        lines.append("(warning only: git goes on)")
    else:
        lines.append(
            f"Stopped. To proceed: ask {holders} to release (send them a message through "
            "agentjournal), wait until the claim ends, or leave these paths out"
            + (" (git restore --staged PATH)" if hook == "pre-commit" else "")
            + f". To go ahead anyway, once: {GUARD_ENV}=off {command} …")
    who = actor or "nobody (every claim counts as another's)"
    lines.append(f"You are {who}: ${ACTOR_ENV_NAME}, else `git config {ACTOR_GIT_CONFIG}`.")
    return "\n".join(lines)


def _minutes(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


# -- git ---------------------------------------------------------------------------------------
def git(*args: str, stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], input=stdin, capture_output=True, check=False,
                              timeout=limits.git_command_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitFailed(f"git {args[0]}: {exc}") from exc
    if done.returncode != 0:
        raise GitFailed(f"git {' '.join(args[:2])}: "
                        f"{done.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return done.stdout.decode("utf-8", "surrogateescape")


def staged_paths() -> list[str]:
    return [p for p in git("diff", "--cached", "--name-only", "-z").split("\0") if p]


@dataclass(frozen=True)
class PushLine:
    local_ref: str
    local_oid: str
    remote_ref: str
    remote_oid: str


def read_push_lines() -> list[PushLine]:
    data = sys.stdin.buffer.read(PUSH_INPUT_BYTES_MAX) if sys.stdin is not None else b""
    lines = []
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 4:
            lines.append(PushLine(*parts))
    return lines


def pushed_paths(lines: list[PushLine], remote: list[str]) -> list[str]:
    """Paths changed by the commits each pushed ref adds to its remote."""
    paths: list[str] = []
    for line in lines:
        if _is_zero(line.local_oid):
            continue  # a branch deleted: nothing pushed
        ranges = [] if _is_zero(line.remote_oid) else [[f"{line.remote_oid}..{line.local_oid}"]]
        ranges.append([line.local_oid, "--not", f"--remotes={remote[0]}" if remote
                       else "--remotes"])
        for revisions in ranges:
            try:
                out = git("log", "--format=", "--name-only", "-z", *revisions)
            except GitFailed:
                continue  # the remote's oid is unknown here: the next range is wider
            paths += [p.strip("\n") for p in out.split("\0") if p.strip("\n")]
            break
    return list(dict.fromkeys(paths))


def _is_zero(oid: str) -> bool:
    return set(oid) == {"0"}


# -- installing the hooks ----------------------------------------------------------------------
def hooks_folder() -> str:
    found = git("rev-parse", "--git-path", "hooks").strip()
    return os.path.abspath(found)


def hook_script(name: str, warn: bool) -> str:
    """A POSIX sh hook: the chained hook first (same arguments, same input), then us."""
    guard = " ".join(shlex.quote(part) for part in [
        sys.executable, "-m", "agentjournal", "guard", "--hook", name,
        *(["--warn"] if warn else [])])
    chained = f'"$(dirname "$0")/{name}{CHAINED_SUFFIX}"'
    lines = ["#!/bin/sh",
             f"{MARKER}: installed by `agentjournal init --git-hooks`; "
             "`agentjournal init --git-hooks --uninstall` removes it.",
             f"# A {name} hook that was here before is kept as {name}{CHAINED_SUFFIX} and "
             "runs first.",
             f"chained={chained}"]
    if name == "pre-push":
        lines += ['input=$(cat)',
                  'if [ -x "$chained" ]; then',
                  '  printf \'%s\\n\' "$input" | "$chained" "$@" || exit $?',
                  'fi',
                  f'printf \'%s\\n\' "$input" | {guard} -- "$@"']
    else:
        lines += ['if [ -x "$chained" ]; then "$chained" "$@" || exit $?; fi',
                  f'exec {guard} -- "$@"']
    return "\n".join(lines) + "\n"


def is_ours(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return MARKER in handle.read(4096)
    except OSError:
        return False


def install_hooks(warn: bool) -> list[str]:
    """Write our hooks, chaining any that were there; what was done, one line each."""
    folder = hooks_folder()
    os.makedirs(folder, exist_ok=True)
    done = []
    for name in HOOK_NAMES:
        path, chained = os.path.join(folder, name), os.path.join(folder, name + CHAINED_SUFFIX)
        if os.path.lexists(path) and not is_ours(path):
            if os.path.lexists(chained):
                done.append(f"{name}: left alone ({path} is not ours and {chained} exists "
                            "already; merge them by hand)")
                continue
            os.rename(path, chained)
            done.append(f"{name}: installed; the existing hook runs first as {chained}")
        else:
            done.append(f"{name}: installed at {path}")
        _write_executable(path, hook_script(name, warn))
    return done


def uninstall_hooks() -> list[str]:
    folder = hooks_folder()
    done = []
    for name in HOOK_NAMES:
        path, chained = os.path.join(folder, name), os.path.join(folder, name + CHAINED_SUFFIX)
        if not is_ours(path):
            done.append(f"{name}: nothing of ours there")
            continue
        os.unlink(path)
        if os.path.lexists(chained):
            os.rename(chained, path)
            done.append(f"{name}: removed; the hook it chained is back at {path}")
        else:
            done.append(f"{name}: removed")
    return done


def _write_executable(path: str, text: str) -> None:
    temp = f"{path}.tmp.{os.getpid()}"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
    mode = os.stat(temp).st_mode
    os.chmod(temp, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(temp, path)


def cmd_git_hooks(args: argparse.Namespace) -> int:
    """``init --git-hooks [--uninstall] [--warn]``."""
    try:
        done = uninstall_hooks() if args.uninstall else install_hooks(args.warn)
    except GitFailed as exc:
        sys.stderr.write(f"agentjournal init: {exc} (run it inside a git repository)\n")
        return 1
    for line in done:
        sys.stderr.write(f"agentjournal init --git-hooks: {line}\n")
    return 0


COMMANDS = {"guard": cmd_guard}
