"""rebuild.release_cache: the index's answer remembered, read back only while fresh and whole."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rebuild.models import DistFile, DistKind, Release, Target, WheelSelector
from rebuild.release_cache import FRESH_FOR, cache_key, recall, remember

TARGET = Target("alpha", "1.0")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
WHEEL = DistFile(
    filename="alpha-1.0-py3-none-any.whl",
    url="https://files.example/alpha-1.0-py3-none-any.whl",
    sha256="a" * 64,
    kind=DistKind.WHEEL,
    size=1234,
    upload_time=datetime(2024, 2, 5, 23, 48, 1, tzinfo=UTC),
    requires_python=">=3.8",
    metadata_sha256="b" * 64,
)
SDIST = DistFile(
    filename="alpha-1.0.tar.gz",
    url="https://files.example/alpha-1.0.tar.gz",
    sha256="c" * 64,
    kind=DistKind.SDIST,
    yanked=True,
    yanked_reason="broken",
)
RELEASE = Release(
    target=TARGET,
    index_url="https://index.example/simple/",
    selector=WheelSelector(python="3.11"),
    files=(WHEEL, SDIST),
    wheel=WHEEL,
    sdist=SDIST,
    project_urls=(("Source", "https://code.example/alpha"),),
)
KEY = cache_key(TARGET, WheelSelector(python="3.11"), ["https://index.example/simple/"], ())


def test_a_release_comes_back_whole_while_fresh(tmp_path: Path) -> None:
    remember(tmp_path, KEY, RELEASE, now=NOW)
    found = recall(tmp_path, KEY, TARGET, now=NOW + FRESH_FOR - timedelta(seconds=1))
    assert found == (RELEASE, NOW)


@pytest.mark.parametrize(
    "later", [FRESH_FOR + timedelta(seconds=1), -timedelta(minutes=5)], ids=["stale", "future"]
)
def test_an_answer_too_old_or_from_the_future_is_not_taken(
    tmp_path: Path, later: timedelta
) -> None:
    remember(tmp_path, KEY, RELEASE, now=NOW)
    assert recall(tmp_path, KEY, TARGET, now=NOW + later) is None


def test_an_entry_for_another_release_is_not_taken(tmp_path: Path) -> None:
    remember(tmp_path, KEY, RELEASE, now=NOW)
    assert recall(tmp_path, KEY, Target("alpha", "1.1"), now=NOW) is None


def test_everything_that_picks_the_wheel_is_in_the_key() -> None:
    others = [
        cache_key(Target("alpha", "1.1"), WheelSelector(python="3.11"), ["u"], ()),
        cache_key(TARGET, WheelSelector(python="3.12"), ["u"], ()),
        cache_key(TARGET, WheelSelector(python="3.11", platform="linux_x86_64"), ["u"], ()),
        cache_key(TARGET, WheelSelector(python="3.11"), ["v"], ()),
        cache_key(TARGET, WheelSelector(python="3.11"), ["u", "w"], ()),
        cache_key(TARGET, WheelSelector(python="3.11"), ["u"], ["a" * 64]),
    ]
    assert len({*others, cache_key(TARGET, WheelSelector(python="3.11"), ["u"], ())}) == 7
    # The order of a lock's hashes does not matter; their case neither.
    assert cache_key(TARGET, WheelSelector(), ["u"], ["A" * 64, "b" * 64]) == cache_key(
        TARGET, WheelSelector(), ["u"], ["b" * 64, "a" * 64]
    )


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: "not json",
        lambda d: json.dumps({**d, "format": 99}),
        lambda d: json.dumps({**d, "seen": "2026-06-01T12:00:00"}),  # no time zone
        lambda d: json.dumps({**d, "release": {**d["release"], "wheel": 7}}),
        lambda d: json.dumps({**d, "release": {**d["release"], "wheel": "0"}}),
        lambda d: json.dumps({**d, "release": {**d["release"], "wheel": -1}}),
        lambda d: json.dumps({**d, "release": {**d["release"], "wheel": 1}}),  # the sdist
        lambda d: json.dumps({**d, "release": {**d["release"], "files": [{"filename": 1}]}}),
        lambda d: json.dumps({**d, "release": {**d["release"], "target": ["alpha"]}}),
        lambda d: json.dumps([]),
    ],
    ids=[
        "garbage",
        "format",
        "naive-time",
        "index",
        "index-type",
        "negative-index",
        "sdist-as-wheel",
        "file",
        "target",
        "shape",
    ],
)
def test_an_entry_that_cannot_be_read_is_ignored(tmp_path: Path, spoil: object) -> None:
    remember(tmp_path, KEY, RELEASE, now=NOW)
    (entry,) = (tmp_path / "releases").glob("*.json")
    document = json.loads(entry.read_text())
    assert callable(spoil)
    entry.write_text(spoil(document))
    assert recall(tmp_path, KEY, TARGET, now=NOW) is None


def test_a_cache_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "releases").write_text("a file where the directory should be")
    remember(tmp_path, KEY, RELEASE, now=NOW)
    assert recall(tmp_path, KEY, TARGET, now=NOW) is None
