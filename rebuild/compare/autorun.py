"""Files that run by themselves: what a wheel makes run without anyone importing it.

A ``.pth`` at the top of site-packages runs at every interpreter start (``site.addpackage``
executes its lines that begin with ``import``); ``sitecustomize`` and ``usercustomize`` are
imported by ``site`` at start-up; a console or GUI entry point and a ``*.data/scripts/`` file
become commands on PATH. Each one the published wheel installs is listed, and one that the
rebuilt wheel does not install identically (same bytes, same executable bit, on every setup) is
an unexplained member divergence of its own kind: no rule explains it, whatever the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rebuild.compare.installed import SETUPS, Placed, Setup, Tree
from rebuild.models import Divergence, DivergenceKind, Side

_LIB = "site-packages/"
_STARTUP_MODULES = ("sitecustomize", "usercustomize")
_ENTRY_POINT_PREFIX = ("console_scripts ", "gui_scripts ")


@dataclass(frozen=True)
class AutoRun:
    """One file or command that runs by itself, as a setup installs it."""

    path: str  # "site-packages/evil.pth", "scripts/tool"
    why: str  # "a .pth at the top of site-packages runs at every interpreter start"


def _why(path: str, placed: Placed) -> str | None:
    if path.startswith(_LIB):
        rest = path[len(_LIB) :]
        top = rest.split("/", 1)[0]
        if "/" not in rest and rest.endswith(".pth"):
            return "a .pth at the top of site-packages: site runs its import lines at start-up"
        if top == "__pycache__" and "/" in rest:
            top = rest.split("/", 1)[1]
        module = top.split(".", 1)[0]
        if module in _STARTUP_MODULES:
            return f"{module}: site imports it at every interpreter start"
        return None
    if path.startswith("scripts/"):
        if placed.sha256.startswith(_ENTRY_POINT_PREFIX):
            return f"an entry point ({placed.sha256}): a command on PATH"
        return "a script of *.data/scripts: a command on PATH"
    return None


def autorun_of(trees: Mapping[Setup, Tree]) -> dict[str, AutoRun]:
    """Every installed path, in any setup, that runs by itself."""
    found: dict[str, AutoRun] = {}
    for setup in SETUPS:
        for path, placed in trees[setup].files.items():
            why = _why(path, placed)
            if why is not None and path not in found:
                found[path] = AutoRun(path, why)
    return dict(sorted(found.items()))


def _listed(item: AutoRun, trees: Mapping[Setup, Tree]) -> str:
    placed = next((trees[s].files[item.path] for s in SETUPS if item.path in trees[s].files), None)
    source = f" (from {', '.join(placed.written)})" if placed is not None and placed.written else ""
    return f"{item.path}{source}: {item.why}"


def autorun_listing(published: Mapping[Setup, Tree]) -> tuple[str, ...]:
    """What the report lists: each of the published wheel's files that run by themselves."""
    return tuple(_listed(item, published) for item in autorun_of(published).values())


def autorun_divergences(
    published: Mapping[Setup, Tree], rebuilt: Mapping[Setup, Tree]
) -> list[Divergence]:
    """One unexplained divergence per published file that runs by itself and that the rebuilt
    wheel does not install identically in every setup."""
    found: list[Divergence] = []
    for item in autorun_of(published).values():
        differs = []
        for setup in SETUPS:
            old = published[setup].files.get(item.path)
            new = rebuilt[setup].files.get(item.path)
            if old is None and new is None:
                continue
            if old is None or new is None or old.state != new.state:
                differs.append((setup, old, new))
        if not differs:
            continue
        setup, old, new = differs[0]
        missing = all(n is None for _, _, n in differs)
        found.append(
            Divergence(
                kind=DivergenceKind.RUNS_ON_ITS_OWN,
                summary=f"{item.path} runs by itself ({item.why}) and the rebuilt wheel "
                + ("does not install it" if missing else "does not install it identically"),
                member=item.path,
                side=Side.PUBLISHED,
                published=_state(old),
                rebuilt=_state(new),
                detail="\n".join(f"{s}: {_state(o)} / {_state(n)}" for s, o, n in differs),
            )
        )
    return found


def _state(placed: Placed | None) -> str:
    if placed is None:
        return "not installed"
    mode = "executable" if placed.executable else "not executable"
    return f"{', '.join(placed.written)}: {placed.sha256[:64]} ({mode})"


__all__ = ["AutoRun", "autorun_divergences", "autorun_listing", "autorun_of"]
