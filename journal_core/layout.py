"""Where a store lives, how it is found, and what git sees of it (docs/design.md, "Layout").

Inside a git repository the store lives in the repository's *common dir* -- ``.git/`` of a
plain clone, the main checkout's ``.git/`` for every ``git worktree`` -- as
``<common dir>/agentjournal/``. Git never cleans, stashes, checks out or merges anything
there, so ``git clean -fdx``, ``git stash -u``, a branch switch or a new worktree never
touch the journal, and every worktree of a repository shares one journal. (git-lfs keeps
its objects there for the same reasons.)

What git tracks is chosen at ``init --track``:

- ``none`` (the default): nothing. The journal is the truth; another clone gets the state
  through ``export``/``import`` or a shared PostgreSQL store.
- ``checkpoints``: a copy of every checkpoint in ``.agentjournal/checkpoints/`` in the
  working tree, plus ``.agentjournal/store.json``: a fresh clone runs ``agentjournal init``
  and its journal restarts from the newest one. Costs a commit-worthy file per roll.
- ``state``: also the projections, in ``.agentjournal/state/`` (the files people read and
  diff). Costs: every branch carries its own copy, a branch switch or a stash rewrites them
  (the store notices through the git index and heals them forward), and merges conflict.

A store folder given explicitly (``--store PATH``), or found as ``.agentjournal/`` holding a
whole store (the layout of earlier versions), is self-contained: every file lives in it,
with a ``.gitignore`` that keeps the machine files out of git. ``git clean -fdx`` deletes
those machine files, journal included: ``agentjournal doctor`` warns about such a store
inside a git working tree.

Finding a store, from a folder upwards (the way git finds ``.git``), at each folder:
``.agentjournal/store.json`` (a whole store, or the tracked face of one whose journal is in
the git common dir), then, at the root of a git working tree, ``<common dir>/agentjournal``.
A ``.agentjournal`` that is a symbolic link is refused: a repository cannot point the store
somewhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import InvalidArgument, StoreNotFound, SymlinkRefused

FACE_DIR = ".agentjournal"
GIT_STORE_DIR = "agentjournal"
STORE_INFO = "store.json"
TRACK_MODES = ("none", "checkpoints", "state")

GITIGNORE_SELF_CONTAINED = """\
# agentjournal: the machine files stay out of git. The journal segments, meta, blobs, the
# lock, cursors, quarantine and archive belong to this machine; the projections in state/
# and the checkpoints are the git-diffable face of the store.
/lock
/lock.*
/cursors/
/events/*
!/events/checkpoints/
"""

GITIGNORE_FACE = """\
# agentjournal: what git tracks of the store whose journal lives in the git common dir
# (.git/agentjournal/). store.json names the store; checkpoints/ lets a fresh clone restart
# its journal (`agentjournal init`); state/, when tracked, holds the projections.
*.tmp.*
"""


@dataclass(frozen=True)
class Location:
    """Where a store is: its root (the machine files) and, when it has one, its tracked
    face in a working tree."""

    root: str
    kind: str  # "git" (root in the git common dir) | "folder" (self-contained)
    face: str | None = None  # the tracked folder (.agentjournal/ in the working tree)
    track: str = "none"
    worktree: str | None = None  # the working tree it was found from (git)
    git_index: str | None = None  # that working tree's index file (track=state)

    @property
    def exists(self) -> bool:
        return os.path.isfile(os.path.join(self.root, STORE_INFO))


# -- git ------------------------------------------------------------------------------------
def git_dirs(folder: str) -> tuple[str, str] | None:
    """(git dir, common dir) when ``folder`` is the root of a git working tree, else None;
    read from the files git writes, without running git."""
    dot_git = os.path.join(folder, ".git")
    if os.path.isdir(dot_git) and not os.path.islink(dot_git):
        git_dir = dot_git
    elif os.path.isfile(dot_git):
        try:
            with open(dot_git, encoding="utf-8") as handle:
                line = handle.read(4096).strip()
        except OSError:
            return None
        if not line.startswith("gitdir:"):
            return None
        git_dir = os.path.normpath(os.path.join(folder, line[len("gitdir:"):].strip()))
    else:
        return None
    common = git_dir
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            common = os.path.normpath(os.path.join(git_dir, handle.read(4096).strip()))
    except OSError:
        pass
    return os.path.realpath(git_dir), os.path.realpath(common)


def worktree_root(start: str) -> str | None:
    """The root of the git working tree holding ``start``, if any."""
    folder = os.path.realpath(start)
    while True:
        if git_dirs(folder) is not None:
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


# -- finding a store -------------------------------------------------------------------------
def read_info(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 16)
    except OSError:
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def find_store(start: str) -> Location | None:
    """The store for a command run in ``start``, looking upwards; None when there is none."""
    folder = os.path.realpath(start)
    while True:
        found = _store_at(folder)
        if found is not None:
            return found
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _store_at(folder: str) -> Location | None:
    face = os.path.join(folder, FACE_DIR)
    if os.path.islink(face):
        raise SymlinkRefused(
            f"{face} is a symlink (to {os.readlink(face)!r}); agentjournal never follows a "
            "link for its store, since a repository could point it anywhere. Remove the "
            "link, or pass --store with a real folder"
        )
    info = read_info(os.path.join(face, STORE_INFO)) if os.path.isdir(face) else None
    dirs = git_dirs(folder)
    if info is not None and info.get("journal") != "git":
        return self_contained(face)
    if dirs is not None:
        root = os.path.join(dirs[1], GIT_STORE_DIR)
        git_info = read_info(os.path.join(root, STORE_INFO))
        if git_info is not None or info is not None:
            track = str((git_info or info or {}).get("track", "none"))
            return Location(root, "git", face if track != "none" else None, track, folder,
                            os.path.join(dirs[0], "index"))
    return None


def location_for_root(root: str) -> Location:
    """The location of a store given by its folder (``--store PATH``)."""
    real = os.path.realpath(root)
    info = read_info(os.path.join(real, STORE_INFO)) or {}
    if info.get("journal") == "git":  # the tracked face: the store is in the common dir
        worktree = worktree_root(os.path.dirname(real))
        dirs = git_dirs(worktree) if worktree else None
        if dirs is None:
            raise StoreNotFound(f"{root} is the tracked face of a store whose journal lives in "
                                "a git common dir, but it is not inside a git working tree")
        return Location(os.path.join(dirs[1], GIT_STORE_DIR), "git", real,
                        str(info.get("track", "checkpoints")), worktree,
                        os.path.join(dirs[0], "index"))
    track = str(info.get("track", "none"))
    if info.get("worktree") and (track != "none" or _in_git_dir(real)):
        worktree = str(info["worktree"])  # a store init made in the git common dir
        dirs = git_dirs(worktree)
        face = os.path.join(worktree, FACE_DIR) if track != "none" else None
        return Location(real, "git", face, track, worktree,
                        os.path.join(dirs[0], "index") if dirs else None)
    return self_contained(real)


def _in_git_dir(root: str) -> bool:
    """Whether ``root`` is ``<git common dir>/agentjournal`` (what ``init`` makes in a git
    repository, named with --store by the configurations ``init --client`` writes)."""
    parent = os.path.dirname(root)
    return os.path.basename(root) == GIT_STORE_DIR and os.path.isfile(
        os.path.join(parent, "HEAD")) and os.path.isdir(os.path.join(parent, "objects"))


def self_contained(root: str) -> Location:
    """A store that is one folder. Inside a git working tree its projections are tracked
    (its .gitignore says so), so git can rewrite them: the working tree's index is watched."""
    worktree = worktree_root(os.path.dirname(root))
    if worktree is None:
        return Location(root, "folder")
    found = git_dirs(worktree)
    return Location(root, "folder", None, "state", worktree,
                    os.path.join(found[0], "index") if found else None)


def location_for_init(start: str, track: str) -> Location:
    """Where ``agentjournal init`` run in ``start`` makes the store."""
    if track not in TRACK_MODES:
        raise InvalidArgument(f"--track must be one of {', '.join(TRACK_MODES)}")
    worktree = worktree_root(start)
    if worktree is None:
        if track != "none":
            raise InvalidArgument(f"--track {track} needs a git repository: run init inside one")
        return Location(os.path.join(os.path.realpath(start), FACE_DIR), "folder")
    dirs = git_dirs(worktree)
    assert dirs is not None
    face = os.path.join(worktree, FACE_DIR)
    return Location(os.path.join(dirs[1], GIT_STORE_DIR), "git",
                    face if track != "none" else None, track, worktree,
                    os.path.join(dirs[0], "index"))


def not_found_message(start: str) -> str:
    return (f"no agentjournal store found from {os.path.realpath(start)} upwards; run "
            "`agentjournal init` in your repository, or pass --store PATH (or set "
            "AGENTJOURNAL_STORE)")


def describe(location: Location | None) -> str:
    """What ``init`` says it made (and ``status`` shows)."""
    if location is None:
        return "a store on a database backend"
    if location.kind == "folder":
        return (f"a self-contained store in {location.root} (its .gitignore keeps the "
                "machine files out of git)")
    tracked = {"none": "git tracks nothing of it",
               "checkpoints": f"git tracks its checkpoints in {location.face}",
               "state": f"git tracks its checkpoints and projections in {location.face}"}
    return (f"the journal lives in {location.root} (the git common dir: every worktree "
            f"shares it; git clean, stash and checkout never touch it); "
            f"{tracked[location.track]}")
