"""A keyring backend that holds its passwords in a JSON file named by $REBUILD_TEST_KEYRING.

keyring loads a backend named by $PYTHON_KEYRING_BACKEND ("module.Class"), so a child process
(``python -m rebuild``) asks this one instead of the desktop's wallet; ``asked`` records each
lookup, so a test can tell which hosts were asked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.credentials import SimpleCredential


class FileKeyring(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def _path(self) -> Path:
        return Path(os.environ["REBUILD_TEST_KEYRING"])

    def _data(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self._path().read_text())
        return data

    def _record(self, service: str) -> None:
        data = self._data()
        asked = data.setdefault("asked", [])
        assert isinstance(asked, list)
        asked.append(service)
        self._path().write_text(json.dumps(data))

    def get_password(self, service: str, username: str) -> str | None:
        self._record(service)
        entries = self._data().get("entries", {})
        assert isinstance(entries, dict)
        found = entries.get(service)
        return found[1] if found and found[0] == username else None

    def get_credential(self, service: str, username: str | None) -> SimpleCredential | None:
        self._record(service)
        entries = self._data().get("entries", {})
        assert isinstance(entries, dict)
        found = entries.get(service)
        if not found or (username is not None and found[0] != username):
            return None
        return SimpleCredential(found[0], found[1])

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._data()
        entries = data.setdefault("entries", {})
        assert isinstance(entries, dict)
        entries[service] = [username, password]
        self._path().write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        raise NotImplementedError
