#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) with the package and its dev tools.
# Sourced by scripts/rebuild and scripts/test; re-installs only when pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.rebuild-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
    echo "rebuild: creating the virtual environment in .venv" >&2
    python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "rebuild: installing rebuild and its dependencies into .venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -e "$root[dev]" >&2
    echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
