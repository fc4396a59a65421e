"""Batch inputs that try to make rebuild read forever, wait forever or print what it should not:
devices, FIFOs, huge files, -r cycles and chains, -r of a private file, deeply nested TOML.

Each hostile input is made by the test; the ones that could hang or exhaust memory run in a child
process with a timeout, which also reports its own peak resident size (not the suite's).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_child import run_measured

from rebuild.errors import UsageError
from rebuild.inputs import MAX_INCLUDE_DEPTH, MAX_INPUT_BYTES, read_input

MiB = 1024 * 1024
# What a refused input may cost the child: the interpreter and rebuild's imports (~60 MiB) plus
# at most one capped read.
RSS_BOUND = 200 * MiB
SECONDS_BOUND = 30

_CHILD = """
from pathlib import Path
from rebuild.errors import RebuildError
from rebuild.inputs import read_input
start = time.monotonic()
try:
    read_input(Path(sys.argv[1]))
    outcome, message, code = "read", "", 0
except RebuildError as e:
    outcome, message, code = "error", e.message, e.exit_code
print(json.dumps({
    "outcome": outcome, "message": message, "code": code,
    "seconds": time.monotonic() - start,
    "rss": hwm(),
}))
"""


def read_in_child(path: Path) -> dict[str, object]:
    """read_input(path) in a fresh interpreter: outcome, message, exit code, time, peak RSS."""
    return run_measured(_CHILD, path, timeout=SECONDS_BOUND)


def refused_in_bounds(path: Path, *, says: str) -> dict[str, object]:
    result = read_in_child(path)
    assert result["outcome"] == "error" and result["code"] == 2, result
    assert says in str(result["message"])
    assert isinstance(result["rss"], int) and result["rss"] < RSS_BOUND, result
    return result


def test_a_character_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    refused_in_bounds(Path("/dev/zero"), says="a character device, not a regular file")
    include = tmp_path / "requirements.txt"
    include.write_text("-r /dev/zero\n")
    refused_in_bounds(include, says="/dev/zero: it is a character device")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    refused_in_bounds(fifo, says="a FIFO (named pipe), not a regular file")
    include = tmp_path / "requirements.txt"
    include.write_text("-r pipe.txt\n")
    refused_in_bounds(include, says="a FIFO")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="a directory, not a regular file"):
        read_input(tmp_path)


def test_a_file_larger_than_the_cap_is_refused_after_reading_the_cap_only(tmp_path: Path) -> None:
    huge = tmp_path / "requirements.txt"
    with huge.open("wb") as f:
        f.truncate(4 * 1024 * MiB)  # sparse: 4 GiB of NULs, no disk used
    result = refused_in_bounds(huge, says=f"larger than {MAX_INPUT_BYTES // MiB} MiB")
    assert isinstance(result["rss"], int) and result["rss"] < RSS_BOUND


def test_an_include_cycle_is_refused_and_named(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha==1.0\n-r b.txt\n")
    (tmp_path / "b.txt").write_text("beta==1.0\n-r c.txt\n")
    (tmp_path / "c.txt").write_text("-r ./a.txt\n")
    with pytest.raises(UsageError, match=r"cycle \(a.txt -> b.txt -> c.txt -> a.txt\)"):
        read_input(tmp_path / "a.txt")
    (tmp_path / "self.txt").write_text("-r self.txt\n")
    with pytest.raises(UsageError, match="includes itself"):
        read_input(tmp_path / "self.txt")


def test_a_long_include_chain_is_refused(tmp_path: Path) -> None:
    for i in range(1000):
        (tmp_path / f"r{i}.txt").write_text(f"p{i}==1.0\n-r r{i + 1}.txt\n")
    (tmp_path / "r1000.txt").write_text("last==1.0\n")
    with pytest.raises(UsageError, match=f"nest deeper than {MAX_INCLUDE_DEPTH} files"):
        read_input(tmp_path / "r0.txt")
    # A chain within the bound reads every release.
    (tmp_path / f"r{MAX_INCLUDE_DEPTH - 1}.txt").write_text("last==1.0\n")
    assert len(read_input(tmp_path / "r0.txt").releases) == MAX_INCLUDE_DEPTH


def test_a_diamond_of_includes_is_bounded_in_files_read(tmp_path: Path) -> None:
    # Each level includes the next one twice: 2**15 reads without a bound on files read.
    for i in range(15):
        (tmp_path / f"d{i}.txt").write_text(f"p{i}==1.0\n-r d{i + 1}.txt\n-r ./d{i + 1}.txt\n")
    (tmp_path / "d15.txt").write_text("last==1.0\n")
    with pytest.raises(UsageError, match="more than 256 files in all"):
        read_input(tmp_path / "d0.txt")


def test_an_include_error_does_not_echo_the_included_file(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:$6$s3cr3tHash:19000:0:99999:7:::\n")
    deps = tmp_path / "requirements.txt"
    deps.write_text(f"alpha==1.0\n-r {secret}\n")
    with pytest.raises(UsageError) as caught:
        read_input(deps)
    text = f"{caught.value.message} {caught.value.hint} {caught.value!r}"
    assert "s3cr3t" not in text and "root:" not in text
    assert "shadow:1" in caught.value.message and "included with -r" in caught.value.message
    # An option-looking secret line is not echoed either.
    secret.write_text("--s3cr3t-token=abc\n")
    with pytest.raises(UsageError) as caught:
        read_input(deps)
    assert "s3cr3t" not in caught.value.message
    # The top-level file, which the user named, is still quoted to help them fix it.
    deps.write_text("alpha>=1\n")
    with pytest.raises(UsageError, match="'alpha>=1' is not pinned"):
        read_input(deps)


@pytest.mark.parametrize("name", ["pylock.toml", "uv.lock"])
def test_deeply_nested_toml_in_a_lock_is_a_usage_error(tmp_path: Path, name: str) -> None:
    lock = tmp_path / name
    depth = 100_000
    lock.write_text(f'lock-version = "1.0"\nx = {"[" * depth}{"]" * depth}\n')
    refused_in_bounds(lock, says="nests arrays or tables too deeply")
