"""Fixtures of the comparison tests."""

from __future__ import annotations

from typing import IO

import pytest

from rebuild.compare.ziplayer import Entry, WheelArchive


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every member opened for reading, as "wheel:member", in order."""
    seen: list[str] = []
    original = WheelArchive.open_member

    def counting(self: WheelArchive, entry: Entry) -> IO[bytes]:
        seen.append(f"{self.path.name}:{entry.name}")
        return original(self, entry)

    monkeypatch.setattr(WheelArchive, "open_member", counting)
    return seen
