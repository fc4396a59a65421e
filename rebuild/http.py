"""The one HTTP session factory shared by the index client and the download cache.

Both stages talk to the same kind of servers (a package index and its file host), so they share
one policy: identify ourselves, retry what is transient with backoff, never retry a client error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from rebuild.credentials import HostAuth

# Statuses worth asking again for: rate limiting and server-side failures. Any other 4xx is the
# request's fault and will not change on a second try.
RETRY_STATUSES = frozenset({429, *range(500, 600)})


# A server may ask us to wait (Retry-After); past this many seconds we would rather fail and say so.
MAX_RETRY_AFTER = 60.0


class _CappedRetry(Retry):
    """urllib3's Retry, with the wait a server can impose through Retry-After bounded."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


def user_agent() -> str:
    # Imported here rather than at module level so that the package's __init__ may re-export
    # stages that import this module without an import cycle.
    from rebuild import __version__

    return f"rebuild/{__version__}"


def http_session(*, retries: int = 3, backoff: float = 0.5) -> requests.Session:
    """A session that retries connection errors, read errors, 429 and 5xx with backoff.

    ``backoff`` is urllib3's backoff factor (sleep ``backoff * 2**n`` seconds between tries);
    tests pass 0 to retry at once.
    """
    retry = _CappedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_max=30,
        respect_retry_after_header=True,
        # Hand the last answer back instead of raising, so the caller can say what the server
        # said (a 503 page is more useful to a person than "too many retries").
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent()
    # An index's credentials go to its own host only, else the user's netrc (rebuild.credentials).
    session.auth = HostAuth()
    return session


@contextlib.contextmanager
def borrowed_session(session: requests.Session | None) -> Iterator[requests.Session]:
    """The caller's ``session`` (left open), else a fresh one closed afterwards."""
    if session is not None:
        yield session
        return
    with http_session() as fresh:
        yield fresh
