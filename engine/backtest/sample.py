"""A bigger history from a small one, for tests and benchmarks: ``copies`` of event files,
each copy's users (and event ids) renamed, times kept. Copy ``k`` of user ``u-1`` is
``u-1~k``: new users, who do exactly what the original did.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson


def copies(files: Iterable[str | Path], n: int, first: int = 0) -> Iterator[bytes]:
    """The lines of copies ``first`` to ``first + n - 1`` of ``files`` (comments and blank
    lines left out), copy by copy, each copy in file order."""
    rows = []
    for f in files:
        for raw in Path(f).read_bytes().splitlines():
            if raw.strip() and not raw.lstrip().startswith(b"#"):
                rows.append(orjson.loads(raw))
    for k in range(first, first + n):
        for row in rows:
            copy = dict(row)
            copy["user_id"] = f"{row['user_id']}~{k}"
            if "event_id" in row:
                copy["event_id"] = f"{row['event_id']}~{k}"
            yield orjson.dumps(copy)


def write_copies(files: Iterable[str | Path], n: int, out: str | Path, first: int = 0) -> int:
    """Write :func:`copies` to ``out``; returns the number of lines."""
    count = 0
    with open(out, "wb") as fh:
        for line in copies(files, n, first):
            fh.write(line + b"\n")
            count += 1
    return count
