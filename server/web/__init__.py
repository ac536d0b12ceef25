"""The dashboard: the board, the claims, the live feed and the history of a store, in a
browser, for the people beside the agents (server-rendered HTML, a little JavaScript, no
build step, nothing fetched from elsewhere).

    app = dashboard_app(store, token=None)   # an ASGI app; `serve --transport http` mounts
                                             # it at / beside /mcp, `agentjournal ui` serves it
"""

from .routes import dashboard_app

__all__ = ["dashboard_app"]
