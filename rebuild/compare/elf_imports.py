"""Imported symbols sorted by what can account for their difference, and what cannot.

Two builds of the same source against two C libraries import different things: glibc gives a
function a new symbol version (``exp@GLIBC_2.2.5`` becomes ``exp@GLIBC_2.29``), its headers
redirect calls (``fscanf`` becomes ``__isoc99_fscanf``), a build's feature checks pick glibc's own
routine where it exists (numpy uses ``cacos`` when glibc >= 2.18, its own code on ``acos``
before), and a compiler inlines ``strcmp`` or leaves the call. Another library build may export
the same functions under another symbol suffix (OpenBLAS's ``cblas_dgemm64_``).

None of that adds a capability: the routines named here compute on memory. A call to anything
else (``system``, ``socket``, ``dlopen``, ``mprotect``…) on one side only stays in
:attr:`ImportChange.other`, which no rule explains. The allowlist is deliberately narrow; a
routine missing from it makes a divergence unexplained, never the reverse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# C99 real and complex math (with f/l/f128 variants), classification and rounding: pure
# functions of their arguments.
_MATH = re.compile(
    r"^c?(?:a?(?:sin|cos|tan)h?|atan2|exp(?:2|10|m1)?|log(?:2|10|1p|b)?|pow|sqrt|cbrt|hypot|"
    r"fabs|abs|arg|conj|proj|real|imag|fmod|remainder|remquo|copysign|nan|nearbyint|l?l?rint|"
    r"l?l?round|trunc|floor|ceil|frexp|ldexp|modf|scalbl?n|ilogb|fdim|fmax|fmin|fma|erfc?|"
    r"lgamma(?:_r)?|tgamma|gamma|sincos|isnan|isinf|finite|signbit|fpclassify|nextafter|"
    r"nexttoward|significand|[jy][01n]|pow10)(?:f|l|f128)?$"
)
# Floating-point environment, string and memory routines: they read and write only the memory
# they are given. Formatting into and parsing from memory belongs here too.
_ROUTINES = frozenset(
    {
        *("feclearexcept", "fegetround", "fesetround", "feraiseexcept", "fetestexcept"),
        *("fegetenv", "fesetenv", "feholdexcept", "feupdateenv"),
        *("memcpy", "memmove", "memset", "memcmp", "memchr", "memrchr", "mempcpy"),
        *("bcmp", "bzero", "strlen", "strnlen", "strcmp", "strncmp", "strcpy", "strncpy"),
        *("stpcpy", "strcat", "strncat", "strchr", "strrchr", "strstr", "strspn", "strcspn"),
        *("strpbrk", "strcasecmp", "strncasecmp", "strdup", "strndup"),
        *("strtol", "strtoul", "strtoll", "strtoull", "strtod", "strtof", "strtold"),
        *("atoi", "atol", "atoll", "atof", "sscanf", "vsscanf", "sprintf", "snprintf"),
        *("vsprintf", "vsnprintf", "qsort", "bsearch", "abs", "labs", "llabs"),
        # The stack protector's handler (__stack_chk_fail): compilers insert it by default
        # (Debian's Python passes -fstack-protector-strong to extensions); it only aborts.
        "stack_chk_fail",
    }
)
# glibc headers redirect these calls to other symbols; a pair of them on the two sides is the
# same call. (C99 scanf, getc/putc once macros over _IO_getc/_IO_putc, _FORTIFY_SOURCE checks.)
_REDIRECT_PREFIXES = ("__isoc99_", "__isoc23_", "_IO_")
_FORTIFIED = re.compile(r"^__(?P<name>\w+)_chk$")
_INTERNAL = re.compile(r"^__(?P<name>\w+?)(?:_finite)?$")


@dataclass(frozen=True)
class ImportChange:
    """How the imported symbols of two objects differ (entries are ``name@version``)."""

    versions: tuple[str, ...]  # the same names bound to other symbol versions
    runtime: tuple[str, ...]  # C-library routines on one side only (a pure allowlist)
    suffixed: tuple[tuple[str, str], ...]  # (published, rebuilt): one name plus a suffix
    suffix: str  # that suffix ("64_"), "" when nothing is suffixed
    other: tuple[str, ...]  # whatever is left: nothing explains these

    @property
    def differs(self) -> bool:
        return bool(self.versions or self.runtime or self.suffixed or self.other)


def _split(entry: str) -> tuple[str, str]:
    name, _, version = entry.partition("@")
    return name, version


def canonical(name: str) -> str:
    """The C-level name a symbol stands for: ``__isoc99_fscanf`` -> ``fscanf``."""
    for prefix in _REDIRECT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    fortified = _FORTIFIED.match(name)
    if fortified is not None:
        return fortified["name"]
    internal = _INTERNAL.match(name)
    if internal is not None:
        return internal["name"]
    return name


def is_runtime_routine(entry: str, *, versioned: bool = True) -> bool:
    """A glibc-versioned import of a routine that only computes on memory.

    ``versioned=False`` is for relocatable objects (static libraries), whose undefined symbols
    carry no version until they are linked.
    """
    name, version = _split(entry)
    if versioned and not version.startswith("GLIBC_"):
        return False
    base = canonical(name)
    return bool(_MATH.match(base)) or base in _ROUTINES


def _suffix_pairs(
    published: list[str], rebuilt: list[str]
) -> tuple[tuple[tuple[str, str], ...], str]:
    """Pair every name on one side with the other side's name plus one common suffix."""
    if not published or len(published) != len(rebuilt):
        return (), ""
    if any("@" in n for n in (*published, *rebuilt)):
        return (), ""  # versioned symbols come from a library that versions them: not this case
    for longer, shorter, flip in ((published, rebuilt, False), (rebuilt, published, True)):
        longest_first = sorted(shorter, key=len, reverse=True)
        suffixes = set()
        pairs: list[tuple[str, str]] = []
        for name in sorted(longer):
            base = next((s for s in longest_first if name.startswith(s) and name != s), None)
            if base is None:
                break
            suffixes.add(name[len(base) :])
            pairs.append((base, name) if flip else (name, base))
        else:
            if len(suffixes) == 1 and len({p[1] if not flip else p[0] for p in pairs}) == len(
                shorter
            ):
                return tuple(pairs), suffixes.pop()
    return (), ""


def classify_imports(
    published: Iterable[str], rebuilt: Iterable[str], *, versioned: bool = True
) -> ImportChange:
    """Sort the imports present on one side only (``name@version`` entries).

    ``versioned=False`` for relocatable objects: see :func:`is_runtime_routine`.
    """
    pub, reb = set(published), set(rebuilt)
    only_pub, only_reb = sorted(pub - reb), sorted(reb - pub)
    pub_names = {_split(e)[0] for e in pub}
    reb_names = {_split(e)[0] for e in reb}
    versions = sorted({e for e in (*only_pub, *only_reb) if _split(e)[0] in pub_names & reb_names})
    rest_pub = [e for e in only_pub if _split(e)[0] not in reb_names]
    rest_reb = [e for e in only_reb if _split(e)[0] not in pub_names]
    # A redirected call appears under one name on each side (fscanf, __isoc99_fscanf): the same
    # C-level call, so both entries are the runtime's.
    redirected = {canonical(_split(e)[0]) for e in rest_pub} & {
        canonical(_split(e)[0]) for e in rest_reb
    }
    runtime = sorted(
        e
        for e in (*rest_pub, *rest_reb)
        if is_runtime_routine(e, versioned=versioned)
        or (
            (not versioned or _split(e)[1].startswith("GLIBC_"))
            and canonical(_split(e)[0]) in redirected
        )
    )
    left_pub = [e for e in rest_pub if e not in runtime]
    left_reb = [e for e in rest_reb if e not in runtime]
    pairs, suffix = _suffix_pairs(left_pub, left_reb)
    paired = {n for pair in pairs for n in pair}
    other = sorted(e for e in (*left_pub, *left_reb) if e not in paired)
    return ImportChange(tuple(versions), tuple(runtime), pairs, suffix, tuple(other))
