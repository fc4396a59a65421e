"""Index credentials: taken out of URLs once, sent only to their own host, never shown.

A private index is reached the way pip and uv reach one: ``https://user:password@host/simple/``
(``--index-url``, ``$PIP_INDEX_URL``, a requirements file's ``--index-url``), else the user's
netrc, which requests reads by itself. :func:`register` splits the user and password off such a
URL and keeps them in this process; every URL rebuild stores, reports or prints is the clean one.
:class:`HostAuth`, mounted on every HTTP session (:mod:`rebuild.http`), adds the credentials to
requests for that same scheme, host and port — the index pages and the files it serves beside
them — and to nothing else, so a file host elsewhere never sees them. :func:`redact` is the last
line of defence for text that came from elsewhere (an error from a library, a tool's stderr).
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from requests.utils import get_netrc_auth

REDACTED = "****"
# scheme://user:password@ or scheme://token@ in any text.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# pip expands ${VAR} (upper case, digits, underscore) in requirements files and index URLs.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)\}")

_lock = threading.Lock()
_known: dict[tuple[str, str], tuple[str, str]] = {}  # (scheme, host:port) -> (user, password)
_secrets: set[str] = set()


def expand_variables(text: str) -> str:
    """``${VAR}`` replaced by the environment's value, as pip does (unset: left as written)."""
    return _VARIABLE.sub(lambda m: os.environ.get(m["name"], m.group()), text)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port}"


def register(url: str) -> str:
    """``url`` without its user and password, which are kept for requests to its own host."""
    url = expand_variables(url)
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    user, password = unquote(user), unquote(password)
    with _lock:
        _known[_origin(url)] = (user, password)
        _secrets.update(s for s in (password, quote(password, safe="")) if s)
        if not password and user:
            _secrets.update({user, quote(user, safe="")})  # a token given as the user name
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def with_credentials(url: str) -> str:
    """``url`` with the credentials registered for its host put back: only for a tool that
    takes them in a URL (uv), passed through its environment, never its command line."""
    with _lock:
        found = _known.get(_origin(url))
    if found is None:
        return url
    user, password = found
    parts = urlsplit(url)
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{userinfo}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL and every registered secret replaced by ****."""

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match["userinfo"].partition(":")
        # A user name alone (ssh://git@host) is no secret, unless registered as a token below.
        return f"{match['scheme']}{user}:{REDACTED}@" if colon else match.group()

    text = _USERINFO.sub(hide, text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


class HostAuth(AuthBase):
    """Basic auth for requests to a host whose index URL carried credentials, else the user's
    netrc entry for the host (as requests itself would use); nothing for any other host."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if request.url is None or "Authorization" in request.headers:
            return request
        with _lock:
            found = _known.get(_origin(request.url))
        if found is None:
            found = get_netrc_auth(request.url)
        if found is None:
            return request
        authorised: requests.PreparedRequest = HTTPBasicAuth(*found)(request)
        return authorised


def forget() -> None:
    """Drop every registered credential (tests, and a long-lived process between runs)."""
    with _lock:
        _known.clear()
        _secrets.clear()
