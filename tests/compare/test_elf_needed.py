"""DT_NEEDED read from the dynamic segment as a shared object streams past, and the graft check
that uses it without reading any object a second time."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from compare.test_elf_release import GRAFT, SO, grafted_pair, needing
from rebuild.compare import compare_wheels, elf_needed, members
from rebuild.compare.elf_needed import NeededReader
from rebuild.compare.elf_read import needed_of
from rebuild.models import Verdict

MiB = 1024 * 1024


def streamed(data: bytes, chunk: int) -> tuple[str, ...] | None:
    reader = NeededReader()
    for at in range(0, len(data), chunk):
        reader.feed(data[at : at + chunk])
    return reader.result()


@pytest.mark.parametrize("chunk", [1, 7, 4096, MiB])
def test_a_linked_object_s_needed_streamed_is_what_the_full_reader_says(
    tmp_path: Path, chunk: int
) -> None:
    data = needing(tmp_path, "liba.so.1", "libb-0123abcd.so.2")
    assert streamed(data, chunk) == needed_of(data)
    assert set(needed_of(data)) >= {"liba.so.1", "libb-0123abcd.so.2"}


def _object(strings_first: bool, gap: int = 0) -> bytes:
    """A 64-bit object of program headers only: one PT_LOAD over the file, a PT_DYNAMIC naming
    two libraries, its string table before the dynamic segment or after it (as patchelf puts
    it), ``gap`` bytes of padding before the second of them and before the first."""
    strings = b"\0libfirst.so.1\0libsecond.so.2\0"
    phdrs_at, phnum = 64, 2
    first = phdrs_at + phnum * 56 + gap
    dynamic_size = 5 * 16
    if strings_first:
        strings_at, dynamic_at = first, first + len(strings) + gap
    else:
        dynamic_at, strings_at = first, first + dynamic_size + gap
    end = max(strings_at + len(strings), dynamic_at + dynamic_size)
    data = bytearray(end)
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    struct.pack_into(
        "<16sHHIQQQIHHHHHH", data, 0, ident, 3, 62, 1, 0, phdrs_at, 0, 0, 64, 56, 2, 64, 0, 0
    )
    struct.pack_into("<IIQQQQQQ", data, phdrs_at, 1, 4, 0, 0, 0, end, end, 0x1000)
    struct.pack_into(
        "<IIQQQQQQ", data, phdrs_at + 56, 2, 6, dynamic_at, dynamic_at, dynamic_at, 80, 80, 8
    )
    entries = [(1, 1), (1, strings.index(b"libsecond")), (5, strings_at), (10, len(strings))]
    for i, (tag, value) in enumerate([*entries, (0, 0)]):
        struct.pack_into("<qQ", data, dynamic_at + 16 * i, tag, value)
    data[strings_at : strings_at + len(strings)] = strings
    return bytes(data)


@pytest.mark.parametrize("strings_first", [True, False])
@pytest.mark.parametrize("gap", [0, 3 * MiB])
def test_the_string_table_is_found_before_or_after_the_dynamic_segment(
    strings_first: bool, gap: int
) -> None:
    data = _object(strings_first, gap)
    if strings_first and gap:
        # Already streamed past, beyond the head kept: the object must be read again.
        assert streamed(data, MiB) is None
    else:
        assert streamed(data, MiB) == ("libfirst.so.1", "libsecond.so.2")
        assert streamed(data, 13) == ("libfirst.so.1", "libsecond.so.2")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x7fELF",
        b"not an object at all, but long enough to hold an ELF header's worth of bytes.....",
    ],
)
def test_what_is_not_a_plain_object_is_left_to_the_full_reader(data: bytes) -> None:
    assert streamed(data, 7) is None


def test_a_string_table_outside_every_segment_is_left_to_the_full_reader() -> None:
    data = bytearray(_object(False))
    # DT_STRTAB (the third entry) pointed far past the one PT_LOAD.
    struct.pack_into("<qQ", data, 64 + 2 * 56 + 2 * 16, 5, 1 << 40)
    assert streamed(bytes(data), 7) is None


def test_an_object_without_a_dynamic_segment_loads_nothing() -> None:
    data = bytearray(_object(False))
    struct.pack_into("<I", data, 64 + 56, 4)  # PT_DYNAMIC -> PT_NOTE
    assert streamed(bytes(data), 7) == ()


def test_the_graft_check_reads_no_object_again(tmp_path: Path, opened: list[str]) -> None:
    published, rebuilt = grafted_pair(tmp_path, GRAFT.rpartition("/")[2])
    comparison = compare_wheels(published, rebuilt)
    assert comparison.verdict is Verdict.DIVERGENT
    assert comparison.unexplained == ()  # the graft is what the extension loads
    assert opened.count(f"{published.name}:{SO}") == 1  # hashed, DT_NEEDED read meanwhile


def test_an_object_the_stream_cannot_read_is_read_again(
    tmp_path: Path, opened: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no head kept and small chunks, gcc's layout (strings before the dynamic segment) is
    # out of reach.
    monkeypatch.setattr(elf_needed, "HEAD_BYTES", 64)
    monkeypatch.setattr(members, "CHUNK", 256)
    published, rebuilt = grafted_pair(tmp_path, GRAFT.rpartition("/")[2])
    comparison = compare_wheels(published, rebuilt)
    assert comparison.unexplained == ()  # the full reader found the graft's name
    assert opened.count(f"{published.name}:{SO}") == 2
