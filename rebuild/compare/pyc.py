"""Reading CPython ``.pyc`` files safely: the header, and the code objects in a child process.

A ``.pyc`` is a 16-byte header (PEP 552: magic number, flags, then the source's modification time
and size, or a hash of the source) followed by a marshalled code object. ``marshal`` is not safe
against hostile input (it can exhaust memory or hang the interpreter), so the code objects are
decoded in a child interpreter with resource limits and a wall-clock timeout; it hands back a
digest of every field of every code object. A child that fails, is killed or answers nonsense
yields a sentence saying why, never an exception.
"""

from __future__ import annotations

import enum
import importlib.util
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from rebuild.compare.analysers import wording

MiB = 1024 * 1024
HEADER_SIZE = 16
_PYC_TAIL = b"\r\n"  # the last two bytes of every CPython 3 magic number
_FLAG_HASH = 0b01
_FLAG_CHECK_SOURCE = 0b10

# The last magic number of each release's development series (its final value), and where each
# series starts; from CPython's Lib/importlib/_bootstrap_external.py.
_FINAL_MAGIC = {
    (3, 6): 3379,
    (3, 7): 3394,
    (3, 8): 3413,
    (3, 9): 3425,
    (3, 10): 3439,
    (3, 11): 3495,
    (3, 12): 3531,
    (3, 13): 3571,
}
_SERIES_START = [
    (3360, (3, 6)),
    (3390, (3, 7)),
    (3400, (3, 8)),
    (3420, (3, 9)),
    (3430, (3, 10)),
    (3450, (3, 11)),
    (3500, (3, 12)),
    (3550, (3, 13)),
    (3600, (3, 14)),
]
_NEWEST_KNOWN_SERIES_END = 3650


def cpython_for(magic: int) -> str | None:
    """The CPython release a magic number belongs to ("3.11"), or None when it is unknown."""
    running = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")
    if magic == running:
        return f"{sys.version_info.major}.{sys.version_info.minor}"
    if magic >= _NEWEST_KNOWN_SERIES_END:
        return None
    series = None
    for start, version in _SERIES_START:
        if magic >= start:
            series = version
    if series is None:
        return None
    label = f"{series[0]}.{series[1]}"
    final = _FINAL_MAGIC.get(series)
    if final is not None and magic > final:
        return None
    return label if final in (None, magic) else f"{label} (a pre-release)"


class Invalidation(enum.Enum):
    """How the importer decides whether a .pyc is stale (PEP 552)."""

    TIMESTAMP = "timestamp"
    CHECKED_HASH = "checked hash"
    UNCHECKED_HASH = "unchecked hash"


@dataclass(frozen=True)
class PycHeader:
    """The 16-byte header of a .pyc."""

    magic: int  # the 16-bit number before b"\r\n"
    flags: int
    mtime: int | None = None  # timestamp-based: the source's modification time...
    source_size: int | None = None  # ... and its size modulo 2**32
    source_hash: bytes | None = None  # hash-based: SipHash of the source

    @property
    def invalidation(self) -> Invalidation | None:
        """None for flags no CPython writes (the importer rejects them)."""
        if self.flags & ~(_FLAG_HASH | _FLAG_CHECK_SOURCE):
            return None
        if not self.flags & _FLAG_HASH:
            return Invalidation.TIMESTAMP if self.flags == 0 else None
        if self.flags & _FLAG_CHECK_SOURCE:
            return Invalidation.CHECKED_HASH
        return Invalidation.UNCHECKED_HASH

    @property
    def cpython(self) -> str:
        version = cpython_for(self.magic)
        return f"CPython {version}" if version else "an unknown CPython"

    def describe(self) -> str:
        mode = self.invalidation
        parts = [
            f"{self.cpython} (magic {self.magic})",
            f"flags {self.flags:#x} ({mode.value if mode else 'invalid'})",
        ]
        if self.mtime is not None and self.source_size is not None:
            parts.append(f"source mtime {format_time(self.mtime)} ({self.mtime:#010x})")
            parts.append(f"source size {self.source_size:,} bytes")
        if self.source_hash is not None:
            parts.append(f"source hash {self.source_hash.hex()}")
        return ", ".join(parts)


def format_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_header(data: bytes) -> PycHeader | str:
    """The header of a .pyc, or why ``data`` does not start with one."""
    if len(data) < HEADER_SIZE:
        return f"{len(data):,} bytes, shorter than a .pyc header ({HEADER_SIZE} bytes)"
    if data[2:4] != _PYC_TAIL:
        return f"no CPython magic number (starts {data[:4].hex()})"
    magic = int.from_bytes(data[0:2], "little")
    flags = int.from_bytes(data[4:8], "little")
    if flags & _FLAG_HASH:
        return PycHeader(magic, flags, source_hash=data[8:16])
    return PycHeader(
        magic,
        flags,
        mtime=int.from_bytes(data[8:12], "little"),
        source_size=int.from_bytes(data[12:16], "little"),
    )


# --- decoding in a child interpreter --------------------------------------------------------

# Run with ``python -I -S -c``: stdlib only, nothing from the environment or the project. Limits
# are set before the first byte of input is read. Input: for each side, 8 bytes of length then
# the marshalled payload. Output: one JSON object, {"sides": [side, side]}.
_DECODER = r"""
import resource, sys
mem, cpu = int(sys.argv[1]), int(sys.argv[2])
# The CPU hard limit sits a second above the soft one, so that SIGXCPU (not SIGKILL) says why.
for which, soft, hard in ((resource.RLIMIT_AS, mem, mem), (resource.RLIMIT_CPU, cpu, cpu + 1),
                          (resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_FSIZE, 0, 0)):
    ceiling = resource.getrlimit(which)[1]
    if ceiling != resource.RLIM_INFINITY:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    resource.setrlimit(which, (soft, hard))
import hashlib, io, json, marshal, struct
sys.setrecursionlimit(20000)
CodeType = type(compile("", "", "exec"))
FIELDS = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
          "co_stacksize", "co_flags", "co_code", "_co_code_adaptive", "co_consts", "co_names",
          "co_varnames", "co_freevars", "co_cellvars", "co_name", "co_qualname",
          "co_firstlineno", "co_linetable", "co_exceptiontable")
MAX_CODES, PREVIEWS = 20000, 16

def short(obj):
    kind = type(obj)
    if kind is str:
        return repr(obj[:60]) + ("..." if len(obj) > 60 else "")
    if kind is bytes:
        return repr(obj[:40]) + ("..." if len(obj) > 40 else "")
    if kind is int:
        return repr(obj) if obj.bit_length() <= 128 else "<int of %d bits>" % obj.bit_length()
    if kind is float and obj != obj:
        # Every NaN prints "nan"; its sign bit and payload are shown by its bytes.
        return "nan(0x%s)" % struct.pack("<d", obj).hex()
    if kind is complex and (obj.real != obj.real or obj.imag != obj.imag):
        return "complex(%s, %s)" % (short(obj.real), short(obj.imag))
    if kind in (float, complex, bool) or obj is None or obj is Ellipsis:
        return repr(obj)
    if kind is CodeType:
        return "<code %s>" % obj.co_qualname[:60]
    try:
        return "<%s of %d>" % (kind.__name__, len(obj))
    except Exception:
        return "<%s>" % kind.__name__

class Walk:
    def __init__(self):
        self.memo, self.keep, self.codes, self.seen = {}, [], [], set()

    def digest(self, obj):
        # Containers are memoised by identity (marshal refs make DAGs that would be exponential
        # to walk as trees); every memoised object is kept alive so that no id is reused.
        kind = type(obj)
        h = hashlib.sha256()
        if kind in (tuple, list, frozenset, set, dict):
            hit = self.memo.get(id(obj))
            if hit is not None:
                return hit
            if kind is dict:
                items = sorted(self.digest(k) + self.digest(v) for k, v in obj.items())
            elif kind in (frozenset, set):
                items = sorted(self.digest(x) for x in obj)
            else:
                items = [self.digest(x) for x in obj]
            h.update(b"%s:%d:" % (kind.__name__.encode(), len(items)))
            for item in items:
                h.update(item)
            self.keep.append(obj)
            self.memo[id(obj)] = h.digest()
            return self.memo[id(obj)]
        if kind is CodeType:
            # Nested code is compared on its own; here it stands for its name only.
            self.found(obj)
            h.update(b"code:" + obj.co_qualname.encode("utf-8", "surrogatepass"))
        elif kind is str:
            h.update(b"str:" + obj.encode("utf-8", "surrogatepass"))
        elif kind is bytes:
            h.update(b"bytes:" + obj)
        elif kind is int:
            h.update(b"int:" + hex(obj).encode())
        elif kind is float:
            # By its bytes: float.hex() says "nan" whatever the NaN's sign bit and payload.
            h.update(b"float:" + struct.pack("<d", obj))
        elif kind is complex:
            h.update(b"complex:" + struct.pack("<dd", obj.real, obj.imag))
        elif kind is bool or obj is None or obj is Ellipsis:
            h.update(b"const:" + repr(obj).encode())
        else:
            h.update(b"other:" + kind.__name__.encode())
        return h.digest()

    def found(self, code):
        if id(code) not in self.seen:
            self.seen.add(id(code))
            self.keep.append(code)
            self.codes.append(code)
            if len(self.codes) > MAX_CODES:
                raise ValueError("more than %d code objects" % MAX_CODES)

def describe(payload):
    stream = io.BytesIO(payload)
    root = marshal.load(stream)
    if type(root) is not CodeType:
        return {"error": "the payload is not a code object but %s" % short(root)}
    walk, out, done = Walk(), [], 0
    walk.found(root)
    filenames = []
    while done < len(walk.codes):
        code = walk.codes[done]
        done += 1
        fields = {}
        for field in FIELDS:
            if hasattr(code, field):
                fields[field] = walk.digest(getattr(code, field)).hex()[:32]
        if code.co_filename not in filenames and len(filenames) < 5:
            filenames.append(code.co_filename)
        out.append({
            "qualname": code.co_qualname,
            "line": code.co_firstlineno,
            "fields": fields,
            "consts": [short(c) for c in code.co_consts[:PREVIEWS]],
            "names": [short(n) for n in code.co_names[:PREVIEWS]],
        })
    return {"codes": out, "filenames": filenames, "trailing": len(payload) - stream.tell()}

sides = []
data = sys.stdin.buffer.read()
offset = 0
for _ in range(2):
    size = int.from_bytes(data[offset:offset + 8], "little")
    payload = data[offset + 8:offset + 8 + size]
    offset += 8 + size
    try:
        sides.append(describe(payload))
    except BaseException as e:
        message = str(e)[:200]
        sides.append({"error": type(e).__name__ + (": " + message if message else "")})
    payload = None
json.dump({"sides": sides}, sys.stdout)
"""


@dataclass(frozen=True)
class CodeInfo:
    """One code object as the child described it."""

    qualname: str
    line: int
    fields: tuple[tuple[str, str], ...]  # (field, digest), co_filename set aside
    consts: tuple[str, ...]  # short renderings, for the detail
    names: tuple[str, ...]


@dataclass(frozen=True)
class Decoded:
    """The code objects of one .pyc, in the order they were found (outermost first)."""

    codes: tuple[CodeInfo, ...]
    filenames: tuple[str, ...]  # distinct co_filename values (the first few)
    trailing: int  # bytes after the marshalled code object


@dataclass(frozen=True)
class DecoderLimits:
    """What the child interpreter may use while decoding one pair."""

    timeout_s: float = 20.0
    cpu_s: int = 10
    memory_bytes: int = 512 * MiB


DEFAULT_LIMITS = DecoderLimits()


def _strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _code_info(raw: object) -> CodeInfo | None:
    if not isinstance(raw, dict):
        return None
    qualname, line, fields = raw.get("qualname"), raw.get("line"), raw.get("fields")
    consts, names = _strings(raw.get("consts")), _strings(raw.get("names"))
    if (
        not isinstance(qualname, str)
        or not isinstance(line, int)
        or not isinstance(fields, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
        or consts is None
        or names is None
    ):
        return None
    return CodeInfo(qualname, line, tuple(sorted(fields.items())), consts, names)


def _side(raw: object) -> Decoded | str:
    """One side of the child's answer, checked field by field."""
    if not isinstance(raw, dict):
        return "the decoder's answer was malformed"
    if "error" in raw:
        error = raw["error"]
        return (
            f"could not be decoded: {wording.clean(error) if isinstance(error, str) else 'error'}"
        )
    codes, filenames, trailing = (
        raw.get("codes"),
        _strings(raw.get("filenames")),
        raw.get("trailing"),
    )
    if not isinstance(codes, list) or filenames is None or not isinstance(trailing, int):
        return "the decoder's answer was malformed"
    infos = [_code_info(c) for c in codes]
    if any(info is None for info in infos):
        return "the decoder's answer was malformed"
    return Decoded(tuple(i for i in infos if i is not None), filenames, trailing)


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(8, "little") + payload


def _stopped(returncode: int, stderr: bytes) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if name == "SIGXCPU":
            return "could not be decoded: the decoder ran out of CPU time and was killed (SIGXCPU)"
        return f"could not be decoded: the decoder was killed by {name}"
    last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    why = wording.clean(last[0])
    return f"could not be decoded: the decoder exited with status {returncode} ({why})"


def decode_pair(
    published: bytes, rebuilt: bytes, limits: DecoderLimits = DecoderLimits()
) -> tuple[Decoded | str, Decoded | str]:
    """Both payloads (the bytes after the header) decoded in one limited child interpreter.

    Each side is its code objects, or a sentence saying why they could not be decoded.
    """
    command = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _DECODER,
        str(limits.memory_bytes),
        str(limits.cpu_s),
    ]
    try:
        # The command is this interpreter and a fixed program; the payload only goes to stdin.
        done = subprocess.run(
            command,
            input=_frame(published) + _frame(rebuilt),
            capture_output=True,
            timeout=limits.timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        why = f"could not be decoded: the decoder was stopped after {limits.timeout_s:g} s"
        return why, why
    except OSError as e:
        why = f"could not be decoded: the decoder could not be started ({e.strerror or e})"
        return why, why
    if done.returncode != 0:
        why = _stopped(done.returncode, done.stderr)
        return why, why
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        answer = None
    sides = answer.get("sides") if isinstance(answer, dict) else None
    if not isinstance(sides, list) or len(sides) != 2:
        why = "could not be decoded: the decoder's answer was malformed"
        return why, why
    return _side(sides[0]), _side(sides[1])
