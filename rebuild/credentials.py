"""Index credentials: taken out of URLs once, sent only to their own host, never shown.

A private index is reached the way pip and uv reach one: ``https://user:password@host/simple/``
(``--index-url``, ``$PIP_INDEX_URL``, a requirements file's ``--index-url``), else the user's
netrc, else the user's keyring where the ``keyring`` package is installed (asked once per index,
only for an index the user named; ``PIP_KEYRING_PROVIDER=disabled`` turns it off, as for pip).
:func:`register` splits the user and password off such a URL and keeps them in this process;
every URL rebuild stores, reports or prints is the clean one.
:class:`HostAuth`, mounted on every HTTP session (:mod:`rebuild.http`), adds the credentials to
requests for that same scheme, host and port — the index pages and the files it serves beside
them — and to nothing else, so a file host elsewhere never sees them. :func:`redact` is the last
line of defence for text that came from elsewhere (an error from a library, a tool's stderr).
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    import requests

# requests is imported where a request is made, not here: :func:`redact` is on the path of every
# line the CLI prints, and `rebuild --help` should not pay for an HTTP library.

REDACTED = "****"
# scheme://user:password@ or scheme://token@ in any text.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# pip expands ${VAR} (upper case, digits, underscore) in requirements files and index URLs.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)\}")

_lock = threading.Lock()
_known: dict[tuple[str, str], tuple[str, str]] = {}  # (scheme, host:port) -> (user, password)
_secrets: set[str] = set()
# The indexes the user named, by origin: the URL to ask the keyring for, and the user name the
# URL gave without a password (a keyring entry is looked up for that user).
_indexes: dict[tuple[str, str], tuple[str, str | None]] = {}
_asked_keyring: set[tuple[str, str]] = set()


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
        with _lock:
            _indexes.setdefault(_origin(url), (url, None))
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    user, password = unquote(user), unquote(password)
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    with _lock:
        if not password and _keyring_enabled():
            # pip's habit: a user name alone asks the keyring for that user's password. Without
            # an entry, the name itself is sent as a token (below), as pip does.
            _indexes[_origin(url)] = (clean, user)
        _known[_origin(url)] = (user, password)
        _secrets.update(s for s in (password, quote(password, safe="")) if s)
        if not password and user:
            _secrets.update({user, quote(user, safe="")})  # a token given as the user name
    return clean


def _keyring_enabled() -> bool:
    return os.environ.get("PIP_KEYRING_PROVIDER", "auto").lower() != "disabled"


def _from_keyring(origin: tuple[str, str]) -> tuple[str, str] | None:
    """The keyring's credentials for a named index, asked once; None without keyring or entry.

    Called with ``_lock`` held. Only indexes the user named are asked: a keyring backend may
    prompt or unlock a wallet, which a file host elsewhere must never cause.
    """
    named = _indexes.get(origin)
    if named is None or origin in _asked_keyring or not _keyring_enabled():
        return None
    _asked_keyring.add(origin)
    try:
        import keyring  # optional: used where the user installed it, as pip does
    except ImportError:
        return None
    url, user = named
    try:
        # As pip asks: the index URL first, then its host.
        found = keyring.get_credential(url, user) or keyring.get_credential(
            urlsplit(url).netloc, user
        )
    except Exception:  # noqa: BLE001 - a broken backend must not stop a check; netrc still holds
        return None
    if found is None or not found.password:
        return None
    credential = (found.username or user or "", found.password)
    _known[origin] = credential
    _secrets.update(s for s in (credential[1], quote(credential[1], safe="")) if s)
    return credential


def keep_secret_of(url: str) -> str:
    """``url`` (a broker's, say) with its whole userinfo shown as ****, for a person to read;
    its user and password are registered as secrets, so that :func:`redact` hides them in any
    text that quotes them (a library's error), whatever form the URL took there.

    Unlike :func:`register`, nothing is kept to be sent anywhere: the URL itself is what the
    caller connects with.
    """
    url = expand_variables(url)
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    # The password; a userinfo without one is a token. A user name ("default") is no secret,
    # and registering it would blot the word out of every text.
    secret = unquote(password if colon else user)
    if secret:
        with _lock:
            _secrets.update({secret, quote(secret, safe="")})
    return urlunsplit((parts.scheme, f"{REDACTED}@{host}", parts.path, parts.query, parts.fragment))


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


class HostAuth:
    """Basic auth for requests to a host whose index URL carried credentials, else the user's
    netrc entry for the host (as requests itself would use); nothing for any other host.

    An index the user named that answers 401 to what was sent (nothing, or a user name alone) is
    asked again once with the keyring's entry for it, as pip does: the keyring is consulted only
    when an index wants a password, never for a public one. (requests takes any callable as
    auth, so this need not derive from its AuthBase.)
    """

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from requests.auth import HTTPBasicAuth
        from requests.utils import get_netrc_auth

        if request.url is None or "Authorization" in request.headers:
            return request
        origin = _origin(request.url)
        with _lock:
            found = _known.get(origin)
            may_ask = origin in _indexes and (found is None or not found[1])
        if found is None:
            found = get_netrc_auth(request.url)
        if may_ask and (found is None or not found[1]):
            # requests leaves register_hook untyped.
            request.register_hook("response", self._retry_with_keyring)  # type: ignore[no-untyped-call]
        if found is None:
            return request
        authorised: requests.PreparedRequest = HTTPBasicAuth(*found)(request)
        return authorised

    def _retry_with_keyring(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        from requests.auth import HTTPBasicAuth

        if response.status_code != 401 or response.request.url is None:
            return response
        with _lock:
            found = _from_keyring(_origin(response.request.url))
        if found is None:
            return response
        # The 401's body is read and its connection released before the request is sent again.
        response.content  # noqa: B018
        response.close()
        again = response.request.copy()
        again.headers.pop("Authorization", None)
        again = HTTPBasicAuth(*found)(again)
        retried: requests.Response = response.connection.send(again, **kwargs)
        retried.history.append(response)
        retried.request = again
        return retried


def forget() -> None:
    """Drop every registered credential (tests, and a long-lived process between runs)."""
    with _lock:
        _known.clear()
        _secrets.clear()
        _indexes.clear()
        _asked_keyring.clear()
