"""Suite-wide pytest options.

``--long`` runs the tests marked ``long`` (the long storms of the reliability suite); without
it they are skipped, so the default suite stays quick. Tests can add lines to the terminal
summary with ``summary_lines`` (for instance the lock-wait percentiles of the stress test).
"""

from __future__ import annotations

import pytest

SUMMARY_KEY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", default=False,
                     help="also run the long storms (tests marked 'long')")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long storm: run with --long")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def summary_lines(request: pytest.FixtureRequest) -> list[str]:
    """Lines printed in the terminal summary at the end of the run (no -s needed)."""
    return request.config.stash.setdefault(SUMMARY_KEY, [])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY_KEY, [])
    if lines:
        terminalreporter.section("reliability suite")
        for line in lines:
            terminalreporter.write_line(line)
