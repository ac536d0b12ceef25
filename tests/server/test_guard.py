"""The git guard, with real git repositories and real commits and pushes: a commit (or a
push) touching a path another actor holds is stopped with who holds it, until when and how
to proceed; --warn only warns; AGENTJOURNAL_GUARD=off lets one command through; an existing
hook is chained, not replaced; --uninstall removes only what was installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.engine import Clock
from support.mcp import child_env

from journal_core import Store, verbs
from journal_core.layout import find_store

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

GIT_S = 60  # bound of one git command (its hooks included)
EXISTING_HOOK = "#!/bin/sh\necho chained-ran >> \"$(git rev-parse --git-dir)/chained.log\"\n"


class Repo:
    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.env = child_env(path / "unused")
        self.env.pop("AGENTJOURNAL_STORE")  # found from the working tree, as in use
        self.env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", AGENTJOURNAL_ACTOR="alice")

    def run(self, *argv: str, ok: bool = True,
            **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(list(argv), cwd=self.path, env={**self.env, **env},
                              capture_output=True, text=True, timeout=GIT_S, check=False)
        if ok:
            assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        return done

    def git(self, *argv: str, ok: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run("git", *argv, ok=ok, **env)

    def agentjournal(self, *argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "agentjournal", *argv, ok=ok)

    def stage(self, relative: str, text: str = "x = 1\n") -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        self.git("add", relative)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def claim(self, actor: str, target: str, ttl_s: int = 900,
              now: Clock | None = None) -> dict[str, object]:
        location = find_store(str(self.path))
        assert location is not None
        with Store(location, now=now or Clock(datetime.now(UTC))) as store:
            key, _ = store.mutate(actor, lambda m: verbs.claim(m, target, ttl_s))
            return store.entity_view(*key)

    def hooks(self) -> Path:
        return self.path / ".git" / "hooks"


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    path, home = tmp_path / "repo", tmp_path / "home"
    path.mkdir()
    home.mkdir()
    made = Repo(path, home)
    made.git("init", "-q", "-b", "main")
    made.git("config", "user.name", "Alice")
    made.git("config", "user.email", "alice@example.com")
    made.stage("README.md", "hello\n")
    made.git("commit", "-q", "-m", "first")
    made.agentjournal("init")
    yield made


def test_a_commit_of_a_path_another_agent_holds_is_stopped_naming_the_holder(
    repo: Repo,
) -> None:
    held = repo.claim("bob", "file:src/")
    repo.agentjournal("init", "--git-hooks")
    before = repo.head()
    repo.stage("src/app.py")
    refused = repo.git("commit", "-m", "edit the app", ok=False)
    assert refused.returncode != 0 and repo.head() == before
    message = refused.stderr
    assert "src/app.py: held by bob" in message and str(held["item_id"]) in message
    assert str(held["entity"]["expires_at"]) in message  # type: ignore[index]
    assert "AGENTJOURNAL_GUARD=off git commit" in message and "You are alice" in message


def test_a_commit_of_my_own_claims_or_of_free_paths_goes_through(repo: Repo) -> None:
    repo.claim("alice", "file:src/app.py")
    repo.claim("bob", "file:docs/")
    repo.agentjournal("init", "--git-hooks")
    repo.stage("src/app.py")
    repo.stage("tests/test_app.py")
    assert repo.git("commit", "-m", "mine and free").returncode == 0


def test_the_actor_of_a_commit_comes_from_git_config_without_the_variable(repo: Repo) -> None:
    repo.claim("bob", "file:src/app.py")
    repo.agentjournal("init", "--git-hooks")
    repo.git("config", "agentjournal.actor", "bob")
    repo.stage("src/app.py")
    assert repo.git("commit", "-m", "as bob", AGENTJOURNAL_ACTOR="").returncode == 0


def test_an_expired_claim_stops_nothing(repo: Repo) -> None:
    an_hour_ago = Clock(datetime.now(UTC))
    an_hour_ago.advance(-3600)
    repo.claim("bob", "file:src/app.py", ttl_s=60, now=an_hour_ago)
    repo.agentjournal("init", "--git-hooks")
    repo.stage("src/app.py")
    assert repo.git("commit", "-m", "bob's claim lapsed").returncode == 0


def test_a_guard_installed_with_warn_only_warns(repo: Repo) -> None:
    repo.claim("bob", "file:src/app.py")
    repo.agentjournal("init", "--git-hooks", "--warn")
    repo.stage("src/app.py")
    warned = repo.git("commit", "-m", "warned")
    assert "held by bob" in warned.stderr and "warning only" in warned.stderr


def test_the_guard_variable_lets_one_commit_through(repo: Repo) -> None:
    repo.claim("bob", "file:src/app.py")
    repo.agentjournal("init", "--git-hooks")
    repo.stage("src/app.py")
    bypassed = repo.git("commit", "-m", "bypass", AGENTJOURNAL_GUARD="off")
    assert "skipped (AGENTJOURNAL_GUARD=off)" in bypassed.stderr
    repo.stage("src/app.py", "x = 2\n")
    assert repo.git("commit", "-m", "no bypass", ok=False).returncode != 0


def test_an_existing_hook_is_chained_and_still_decides(repo: Repo) -> None:
    existing = repo.hooks() / "pre-commit"
    existing.write_text(EXISTING_HOOK, encoding="utf-8")
    existing.chmod(0o755)
    repo.agentjournal("init", "--git-hooks")
    assert (repo.hooks() / "pre-commit.agentjournal-chained").read_text(
        encoding="utf-8") == EXISTING_HOOK
    repo.stage("free.py")
    repo.git("commit", "-m", "both hooks run")
    assert (repo.path / ".git" / "chained.log").read_text(encoding="utf-8") == "chained-ran\n"
    (repo.hooks() / "pre-commit.agentjournal-chained").write_text("#!/bin/sh\nexit 1\n",
                                                                  encoding="utf-8")
    repo.stage("free.py", "y = 2\n")
    assert repo.git("commit", "-m", "the chained hook refuses", ok=False).returncode != 0
    repo.agentjournal("init", "--git-hooks")  # again: nothing chained twice
    assert not (repo.hooks() / "pre-commit.agentjournal-chained.agentjournal-chained").exists()


def test_uninstall_removes_only_what_was_installed(repo: Repo) -> None:
    existing = repo.hooks() / "pre-commit"
    existing.write_text(EXISTING_HOOK, encoding="utf-8")
    existing.chmod(0o755)
    other = repo.hooks() / "post-commit"
    other.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    repo.agentjournal("init", "--git-hooks")
    assert (repo.hooks() / "pre-push").exists()
    repo.agentjournal("init", "--git-hooks", "--uninstall")
    assert existing.read_text(encoding="utf-8") == EXISTING_HOOK
    assert os.access(existing, os.X_OK)
    assert not (repo.hooks() / "pre-push").exists()
    assert not (repo.hooks() / "pre-commit.agentjournal-chained").exists()
    assert other.exists()
    repo.claim("bob", "file:src/app.py")
    repo.stage("src/app.py")
    assert repo.git("commit", "-m", "no guard any more").returncode == 0


def test_a_push_of_commits_touching_a_held_path_is_stopped(repo: Repo, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True, timeout=GIT_S)
    repo.git("remote", "add", "origin", str(remote))
    repo.git("push", "-q", "origin", "main")
    repo.agentjournal("init", "--git-hooks")
    repo.stage("docs/guide.md", "# guide\n")
    repo.git("commit", "-m", "docs before the claim")
    repo.claim("bob", "file:docs/*.md")
    repo.stage("src/free.py")
    repo.git("commit", "-m", "a free path on top")
    refused = repo.git("push", "origin", "main", ok=False)
    assert refused.returncode != 0 and "this push changes 1 path(s)" in refused.stderr
    assert "docs/guide.md: held by bob" in refused.stderr
    assert "AGENTJOURNAL_GUARD=off git push" in refused.stderr
    repo.git("push", "-q", "origin", "main", AGENTJOURNAL_GUARD="off")
    remote_head = subprocess.run(["git", "-C", str(remote), "rev-parse", "main"],
                                 capture_output=True, text=True, check=True, timeout=GIT_S)
    assert remote_head.stdout.strip() == repo.head()


def test_a_repository_without_a_store_commits_as_if_there_were_no_guard(
    repo: Repo, tmp_path: Path,
) -> None:
    repo.agentjournal("init", "--git-hooks")
    shutil.rmtree(repo.path / ".git" / "agentjournal")
    repo.stage("src/app.py")
    done = repo.git("commit", "-m", "no store")
    assert done.returncode == 0 and "agentjournal" not in done.stderr
