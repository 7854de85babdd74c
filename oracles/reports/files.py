"""Output files that are never lost: paths checked before any work starts, contents written atomically.

A run that took minutes must not end in a traceback because its report cannot be written, and a reader
must never see half a file: every report is checked up front (a probe file is created and removed where
it will go) and written to a temporary file beside it, then renamed over it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _probe(directory: Path) -> str | None:
    try:
        handle, probe = tempfile.mkstemp(dir=directory, prefix=".gradoracle-", suffix=".probe")
    except OSError as exc:
        return f"cannot write into {str(directory)!r} ({exc.strerror or exc})"
    os.close(handle)
    os.unlink(probe)
    return None


def file_problem(text: str) -> str | None:
    """Why `text` cannot be written as a file, or None."""
    if not text.strip():
        return "is empty; give a file path"
    path = Path(text)
    if path.is_dir():
        return "is a directory; give a file path"
    if not path.parent.is_dir():
        return f"is in {str(path.parent)!r}, which is not a directory that exists"
    return _probe(path.parent)


def directory_problem(text: str) -> str | None:
    """Why `text` cannot be (created and) written as an output directory, or None."""
    if not text.strip():
        return "is empty; give a directory"
    path = Path(text)
    if path.exists() and not path.is_dir():
        return "exists and is not a directory"
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        return f"is under {str(existing)!r}, which is not a directory"
    return _probe(existing)


def write_atomically(path: Path, text: str) -> None:
    """`text` into `path` through a temporary file in the same directory, renamed over it."""
    write_bytes_atomically(path, text.encode())


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """`data` into `path` the same way, readable as a file created by `open` would be (mkstemp's are 0600)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask
