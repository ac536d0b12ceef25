"""Where no browser can be had, the browser tests skip and say how to enable them; where
they are required (AGENTJOURNAL_REQUIRE_BROWSER=1, as .ci/run sets it), they fail."""

from __future__ import annotations

from pathlib import Path

from browser_gate import REQUIRE_ENV, browser_missing, verdict


def test_a_machine_without_chromium_is_told_what_is_missing(tmp_path: Path) -> None:
    missing = browser_missing(str(tmp_path / "no-chromium"))
    assert missing is not None and "no Chromium at" in missing


def test_without_a_browser_the_tests_skip_with_how_to_enable_them() -> None:
    found = verdict("no Chromium at /usr/bin/chromium", {})
    assert found is not None
    action, message = found
    assert action == "skip"
    assert "apt-get install -y chromium" in message and "pip install -e '.[test]'" in message


def test_when_the_browser_is_required_a_missing_one_fails_instead_of_skipping() -> None:
    found = verdict("no Chromium at /usr/bin/chromium", {REQUIRE_ENV: "1"})
    assert found is not None and found[0] == "fail" and REQUIRE_ENV in found[1]
    assert verdict(None, {REQUIRE_ENV: "1"}) is None
