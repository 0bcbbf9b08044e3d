"""Container health probe: GET a health URL, exit 0 on 200 and 1 otherwise.

The slim base image has no curl or wget, so the image's HEALTHCHECK runs this with the
interpreter that is already there. ``CASEBRIDGE_HEALTHCHECK_URL`` overrides the URL (default: the
gateway's liveness endpoint on its own port).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/health/live"


def probe(url: str, timeout: float = 4.0) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds."""
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - scheme checked
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    """Probe the URL from the command line, the environment, or the default."""
    url = argv[1] if len(argv) > 1 else os.environ.get("CASEBRIDGE_HEALTHCHECK_URL", DEFAULT_URL)
    return 0 if probe(url) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
