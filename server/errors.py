"""The one place where the store's exceptions become MCP errors.

An error the model can fix (bad argument, unknown id, claim held by someone else, payload
too large, store busy, a read-only store) is a ``ToolError``: in mcp 2.x only its message
reaches the model, as an ``isError`` result, so the message says what to do next and
whether anything was written. The truth about a failed mutation is the store's:

- ``NotApplied``: the journal write failed before anything of it was in the journal;
- ``OutcomeUnknown``: it was written but its durability could not be confirmed -- it may
  have been applied, and a retry with the same ``request_id`` is safe;
- any other store fault raised by a mutation was raised before its append (nothing written).

A store fault the model cannot fix (I/O error, corruption) on a read is logged to stderr
with its traceback and answered as a protocol error (``MCPError``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR

from journal_core import (
    ClaimConflict,
    Conflict,
    InvalidArgument,
    LockTimeout,
    NotApplied,
    NotFound,
    OutcomeUnknown,
    PayloadTooLarge,
    ReadOnlyStore,
    StoreError,
    StoreUnavailable,
    UserError,
)

logger = logging.getLogger("agentjournal.server")

P = ParamSpec("P")
R = TypeVar("R")

NOT_FOUND_HINT = "find ids with `list` or `search`"
TOO_LARGE_HINT = (
    "nothing was written; shorten it, or put the bulk in a file of the repository and "
    "reference its path"
)
LOCK_HINT = "nothing was written; the store is busy, retry the call in a moment"
UNKNOWN_HINT = ("retry with the same request_id: if the first call was applied, the retry "
                "answers it and writes nothing")


def tool_message(exc: UserError | LockTimeout | ReadOnlyStore | StoreError) -> str:
    """The text the model reads: the store's own message plus what to do about it."""
    if isinstance(exc, ClaimConflict):
        return str(exc)  # names the holder and the expiry, and says what to do
    if isinstance(exc, NotFound):
        return f"{exc}; {NOT_FOUND_HINT}"
    if isinstance(exc, PayloadTooLarge):
        return f"{exc}; {TOO_LARGE_HINT}"
    if isinstance(exc, LockTimeout):
        return f"{exc}; {LOCK_HINT}"
    if isinstance(exc, OutcomeUnknown):
        return f"the outcome is unknown: {exc}; {UNKNOWN_HINT}"
    if isinstance(exc, StoreUnavailable):
        return f"{exc}; retry in a moment (the server reconnects by itself)"
    if isinstance(exc, NotApplied):
        return f"the store could not write: {exc}; retrying is safe"
    if isinstance(exc, ReadOnlyStore):
        return f"{exc}; nothing was written"
    if isinstance(exc, InvalidArgument | Conflict):
        return f"{exc}; nothing was written"
    return str(exc)


def translate_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a tool function (plain or async) so store exceptions reach the client as MCP
    errors."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            with translated(fn.__name__):
                return await fn(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated(fn.__name__):
            return fn(*args, **kwargs)

    return wrapper


@contextmanager
def translated(tool: str) -> Iterator[None]:
    """The store's exceptions raised inside, as the MCP errors the client should see."""
    try:
        yield
    except (NotApplied, OutcomeUnknown) as exc:
        logger.warning("tool %s: %s", tool, exc)
        raise ToolError(tool_message(exc)) from exc
    except (UserError, LockTimeout, ReadOnlyStore, StoreUnavailable) as exc:
        raise ToolError(tool_message(exc)) from exc
    except StoreError as exc:
        logger.exception("store fault in tool %s", tool)
        raise MCPError(
            code=INTERNAL_ERROR,
            message=f"the store failed: {exc}. An operator should run `agentjournal "
            "doctor` on this store.",
        ) from exc


class AppliedButUnanswered(ToolError):
    """The mutation happened (its txn is durable), but building the answer failed."""
