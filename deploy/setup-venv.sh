#!/usr/bin/env bash
# Create .venv (python3 >= 3.11) and install the project into it, with the dev extra when
# asked:  bash deploy/setup-venv.sh [dev]
# Re-installs only when pyproject.toml changed since the last install into this .venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
extra="${1:-}"

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"
      break
    fi
  done
fi
if [[ -z "$PYTHON" ]]; then
  echo "error: need python3 >= 3.11 on PATH (or set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv .venv
fi
spec="."
[[ "$extra" == "dev" ]] && spec=".[dev]"
stamp=".venv/.journey-engine-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $ROOT $spec"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "==> pip install -e '$spec'"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
  echo "$want" >"$stamp"
fi
