"""``casebridge serve``: run the HTTP gateway with uvicorn."""

from __future__ import annotations

import typer

from casebridge.errors import ConfigError
from casebridge.gateway.cli import app
from casebridge.settings import get_settings


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port to listen on."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes (set PROMETHEUS_MULTIPROC_DIR with >1)."
    ),
) -> None:
    """Serve the gateway API (docs at /docs, schema at /openapi.json)."""
    import uvicorn

    # invalid settings fail here, once, before any worker starts
    problems = get_settings().gateway_problems()
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))
    uvicorn.run(
        "casebridge.gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The peer address must stay the proxy's own: the client-certificate header is trusted
        # by that address (see casebridge.gateway.security), so X-Forwarded-For is not applied.
        proxy_headers=False,
        access_log=False,  # the gateway logs every request itself, without personal data
        server_header=False,
    )
