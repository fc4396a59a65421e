"""Fetch stage: a content-addressed download cache whose every file has been hash-checked.

A file lives at ``<root>/files/sha256/<2 hex>/<sha256>/<filename>``, so its path says what its
bytes must hash to, and two releases sharing a file share one copy. Downloads go to a temporary
file beside the final one and are moved into place only once their sha256 matches the index's:
an interrupted or tampered download never appears under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import platformdirs

from rebuild.errors import FetchError, UsageError
from rebuild.models import Artifact, DistFile

if TYPE_CHECKING:
    import requests

CHUNK_BYTES = 1024 * 1024
# Attempts at one download when the connection drops mid-body (the session's own retries cover
# failures before the body starts).
DOWNLOAD_ATTEMPTS = 3

# When the index declares no size, a download still stops here rather than fill the disk.
MAX_UNDECLARED_BYTES = 8 * 1024 * 1024 * 1024

Progress = Callable[[int, int | None], None]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def default_cache_dir() -> Path:
    """``$REBUILD_CACHE_DIR`` if set, else the user's cache directory for rebuild."""
    override = os.environ.get("REBUILD_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return platformdirs.user_cache_path("rebuild")


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks so that memory stays flat. Raises OSError."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def local_artifact(path: Path) -> Artifact:
    """A file the user gave on the command line, hashed so that reports can name it."""
    if not path.is_file():
        raise UsageError(
            f"{path} is not a file",
            hint="give the path of an existing wheel or sdist",
        )
    try:
        return Artifact(
            path=path,
            sha256=sha256_file(path),
            size=path.stat().st_size,
            origin="local file",
        )
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from e


def check_filename(filename: str) -> str:
    """``filename`` if it is a plain file name, safe to use as the last part of a path."""
    if (
        not filename
        or filename.startswith(".")
        or any(bad in filename for bad in ("/", "\\", "..", "\0"))
    ):
        raise FetchError(
            f"the index lists a file named {filename!r}, which is not a plain file name",
            hint="the index is misconfigured or hostile; check --index-url",
        )
    return filename


def _check_sha256(file: DistFile) -> str:
    # The hash becomes a directory name: it must be exactly what its name claims.
    sha256 = file.sha256.lower()
    if not _SHA256.match(sha256):
        raise FetchError(
            f"the index gives {file.filename} a malformed sha256 {file.sha256!r}",
            hint="the index is misconfigured or hostile; check --index-url",
        )
    return sha256


class _Retryable(Exception):
    """A download attempt that failed in a way another attempt may not."""


class Cache:
    """The download cache under ``root``.

    Without a ``session``, each download opens its own and closes it afterwards. ``backoff`` is
    the base of the wait, in seconds, between attempts after a connection dropped mid-body.
    """

    def __init__(
        self,
        root: Path,
        *,
        session: requests.Session | None = None,
        timeout: float = 60,
        backoff: float = 1.0,
    ) -> None:
        self.root = root
        self._session = session
        self._timeout = timeout
        self._backoff = backoff

    def path_for(self, file: DistFile) -> Path:
        """Where ``file`` lives in the cache once fetched."""
        sha256 = _check_sha256(file)
        return self.root / "files" / "sha256" / sha256[:2] / sha256 / check_filename(file.filename)

    def has(self, file: DistFile) -> bool:
        """Whether ``file`` is in the cache already (``fetch`` still checks it)."""
        return self.path_for(file).is_file()

    def fetch(
        self, file: DistFile, *, progress: Progress | None = None, verify: bool = True
    ) -> Artifact:
        """``file`` on disk with its sha256 checked, downloaded unless already cached.

        A cached copy is re-checked: its size always, its sha256 too unless ``verify`` is false.
        A copy that fails is deleted and downloaded again.
        """
        final = self.path_for(file)
        cached = self._cached(final, file, verify=verify)
        if cached is not None:
            return cached
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FetchError(
                f"cannot create the cache directory {final.parent}: {e.strerror or e}",
                hint="check permissions, or choose another cache with $REBUILD_CACHE_DIR",
            ) from e
        # HTTP is imported when a file must be downloaded, not for a cache hit or a local wheel.
        from rebuild.http import borrowed_session

        with borrowed_session(self._session) as session:
            size = self._download_with_retries(session, file, final, progress)
        return Artifact(path=final, sha256=file.sha256.lower(), size=size, origin=file.url)

    def _cached(self, final: Path, file: DistFile, *, verify: bool) -> Artifact | None:
        try:
            size = final.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise FetchError(f"cannot read the cache entry {final}: {e.strerror or e}") from e
        expected = file.sha256.lower()
        try:
            intact = (file.size is None or size == file.size) and (
                not verify or sha256_file(final) == expected
            )
            if not intact:
                # Damaged on disk since it was checked; fetch it again rather than fail.
                final.unlink()
                return None
        except OSError as e:
            raise FetchError(f"cannot read the cache entry {final}: {e.strerror or e}") from e
        return Artifact(path=final, sha256=expected, size=size, origin=file.url)

    def _download_with_retries(
        self,
        session: requests.Session,
        file: DistFile,
        final: Path,
        progress: Progress | None,
    ) -> int:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                return self._download_once(session, file, final, progress)
            except _Retryable as e:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise FetchError(
                        f"could not download {file.url} after {attempt} attempts: {e}",
                        hint="check the network or a proxy (HTTPS_PROXY), then try again",
                    ) from e.__cause__
                time.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _download_once(
        self,
        session: requests.Session,
        file: DistFile,
        final: Path,
        progress: Progress | None,
    ) -> int:
        temp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed and removed in `finally`
            dir=final.parent, prefix=".", suffix=".part", delete=False
        )
        try:
            with temp:
                digest, size = self._stream(session, file, temp, progress)
                temp.flush()
                os.fsync(temp.fileno())
            _check_download(file, digest, size)
            # Atomic: readers see either no file or the whole, checked one.
            Path(temp.name).replace(final)
            return size
        except OSError as e:
            raise FetchError(
                f"cannot write {final}: {e.strerror or e}",
                hint="check free space and permissions in the cache ($REBUILD_CACHE_DIR)",
            ) from e
        finally:
            # Whatever happened (a mismatch, Ctrl-C), no partial file survives.
            with contextlib.suppress(FileNotFoundError):
                Path(temp.name).unlink()

    def _stream(
        self,
        session: requests.Session,
        file: DistFile,
        out: IO[bytes],
        progress: Progress | None,
    ) -> tuple[str, int]:
        import requests

        digest = hashlib.sha256()
        received = 0
        try:
            with session.get(file.url, stream=True, timeout=self._timeout) as response:
                total = _expected_size(file, response)
                limit = MAX_UNDECLARED_BYTES if file.size is None else file.size
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    received += len(chunk)
                    if received > limit:
                        raise _too_long(file, limit)
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(received, total)
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as e:
            raise _Retryable(str(e)) from e
        except requests.RequestException as e:
            raise FetchError(f"could not download {file.url}: {e}") from e
        return digest.hexdigest(), received


def _expected_size(file: DistFile, response: requests.Response) -> int | None:
    """The size to report progress against, after refusing an answer we will not accept."""
    status = response.status_code
    if status >= 500 or status == 429:
        # The session already retried these with backoff; one more round may still help.
        raise _Retryable(f"HTTP {status} {response.reason or ''}".rstrip())
    if status >= 400:
        raise FetchError(
            f"{file.url} answered HTTP {status} {response.reason or ''}".rstrip(),
            hint="the file may have been removed from the index; check the release",
        )
    declared = response.headers.get("Content-Length", "")
    length = int(declared) if declared.isdigit() else None
    # Content-Length counts encoded bytes; only a plain (identity) body can be judged by it.
    plain = response.headers.get("Content-Encoding", "identity") == "identity"
    if plain and file.size is not None and length is not None and length > file.size:
        raise _too_long(file, file.size)
    return file.size if file.size is not None else length


def _too_long(file: DistFile, limit: int) -> FetchError:
    declared = "the index declares" if file.size is not None else "rebuild accepts"
    return FetchError(
        f"{file.url} sends more than the {limit} bytes {declared} for "
        f"{file.filename}; download aborted",
        hint="the file host or a proxy serves something else than the index lists",
    )


def _check_download(file: DistFile, digest: str, size: int) -> None:
    if file.size is not None and size != file.size:
        raise FetchError(
            f"{file.filename}: received {size} bytes, the index declares {file.size}",
            hint="the download was cut short or altered; try again",
        )
    expected = file.sha256.lower()
    if digest != expected:
        raise FetchError(
            f"{file.filename}: sha256 {digest} does not match the index's {expected}",
            hint="the file host or a proxy serves altered bytes; do not trust this file",
        )
