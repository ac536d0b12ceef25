# agentjournal over streamable HTTP, on a store mounted at /store.
#
#   docker build -t agentjournal .
#   docker run -p 8765:8765 -e AGENTJOURNAL_TOKEN=change-me \
#     -v "$PWD/.agentjournal:/store" --user "$(id -u):$(id -g)" agentjournal
#
# It creates the store on the volume the first time (serve --init).
# The server listens on 0.0.0.0 inside the container, so it refuses to start without
# AGENTJOURNAL_TOKEN; clients send "Authorization: Bearer <token>" to http://HOST:8765/mcp.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGENTJOURNAL_STORE=/store

WORKDIR /app
COPY pyproject.toml README.md ./
COPY journal_core ./journal_core
COPY server ./server
RUN pip install . \
    && useradd --create-home --uid 10001 --user-group agentjournal \
    && mkdir -p /store \
    && chown agentjournal:agentjournal /store

USER agentjournal
VOLUME ["/store"]
EXPOSE 8765

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8765), 2).close()"]

ENTRYPOINT ["agentjournal"]
CMD ["serve", "--init", "--transport", "http", "--host", "0.0.0.0", "--port", "8765"]
