"""Deterministic zip archives of the function code and the shared layer (standard library only).

The same source must give the same bytes on every machine, so that `pulumi preview` shows no
code change when nothing changed: entries are sorted, every entry has the same timestamp
(1980-01-01, the earliest a zip can hold), files are 0o644, and the checkout's `__pycache__`,
`*.pyc` and hidden files never get in. Entries are stored, not compressed: the bytes DEFLATE
gives depend on the zlib that Python links (zlib-ng, as on Fedora 40 and later, or another zlib
version compresses the same file differently), so a deflated archive changed with the machine
that built it, and each engineer's preview would show every function's code as changed. Stored,
an archive is about 2.2 times as large, still far below Lambda's 50 MB for an upload and 250 MB
unzipped (docs/benchmarks.md, package sizes). Given the runtime's interpreter, an archive also
carries the bytecode that interpreter compiles from the same sources, reproducibly
(`components/bytecode.py`). Archives are written to `build/archives/<name>-<sha256[:16]>.zip`
under the repository root.

This module imports no pulumi, so the local tools and the tests can build archives too.

A function folder that does not exist yet (handlers are written in parallel) still gives an
archive: it contains only `handlers/__init__.py`. The program warns about it at preview time
(see `has_entry_point`), and a function deployed that way fails at invocation, never silently.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from components.bytecode import RuntimePython, compile_bytecode

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLERS_DIR = "handlers"
SHARED_PACKAGE = "fleet_shared"
LAYER_NAME = "fleet-shared-layer"
ARCHIVE_DIR = Path("build") / "archives"

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
# No compressor, so no zlib, between the contents and the bytes; the CRC-32 zipfile still
# computes is one fixed function, the same in every zlib.
COMPRESSION = zipfile.ZIP_STORED
EXCLUDED_DIRS = frozenset({"__pycache__"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class BuiltArchive:
    """Where an archive was written and its SHA-256 (base64 is what Lambda compares)."""

    path: Path
    sha256_base64: str
    sha256_hex: str


def _files_under(root: Path) -> Iterable[Path]:
    """Files below `root`, without caches and hidden files or folders (an editor's swap file, the
    OS's `.DS_Store`: they differ between checkouts); nothing when the folder does not exist yet."""
    if not root.is_dir():
        return []
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [
            name for name in subdirectories if name not in EXCLUDED_DIRS and not _hidden(name)
        ]
        found.extend(
            Path(directory) / name
            for name in files
            if not name.endswith(EXCLUDED_SUFFIXES) and not _hidden(name)
        )
    return found


def _hidden(name: str) -> bool:
    return name.startswith(".")


def archive_contents(
    entries: Mapping[str, Path], runtime_python: RuntimePython | None = None
) -> dict[str, bytes]:
    """`{archive path: bytes}` of the source files, plus their bytecode given `runtime_python`."""
    contents = {archive_path: file.read_bytes() for archive_path, file in entries.items()}
    if runtime_python is not None:
        contents.update(compile_bytecode(runtime_python, contents))
    return contents


def zip_bytes(entries: Mapping[str, bytes]) -> bytes:
    """A zip of `{archive path: content}`, byte-identical for the same contents, whatever zlib
    (if any) the building Python links."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=COMPRESSION) as zf:
        for archive_path in sorted(entries):
            info = zipfile.ZipInfo(archive_path, date_time=FIXED_DATE_TIME)
            info.compress_type = COMPRESSION
            info.create_system = 3  # Unix, so that the mode below is honoured.
            info.external_attr = (0o100000 | FILE_MODE) << 16
            zf.writestr(info, entries[archive_path])
    return buffer.getvalue()


def _write(name: str, content: bytes, output_dir: Path) -> BuiltArchive:
    digest = hashlib.sha256(content)
    path = output_dir / f"{name}-{digest.hexdigest()[:16]}.zip"
    if not path.is_file() or path.read_bytes() != content:
        output_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(content)
        partial.replace(path)
    return BuiltArchive(
        path=path,
        sha256_base64=base64.b64encode(digest.digest()).decode(),
        sha256_hex=digest.hexdigest(),
    )


def _relative_entries(source: Path, prefix: PurePosixPath) -> dict[str, Path]:
    return {
        str(prefix / file.relative_to(source).as_posix()): file for file in _files_under(source)
    }


def layer_entries(repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """The shared package laid out as Lambda expects a Python layer: `python/fleet_shared/...`."""
    source = repo_root / HANDLERS_DIR / SHARED_PACKAGE
    return _relative_entries(source, PurePosixPath("python") / SHARED_PACKAGE)


def function_entries(function: str, repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """`handlers/__init__.py` and `handlers/<function>/**`, so `handlers.<function>.app` imports."""
    handlers = repo_root / HANDLERS_DIR
    entries = _relative_entries(handlers / function, PurePosixPath(HANDLERS_DIR) / function)
    package_init = handlers / "__init__.py"
    if package_init.is_file():
        entries[f"{HANDLERS_DIR}/__init__.py"] = package_init
    return entries


def has_entry_point(function: str, repo_root: Path = REPO_ROOT) -> bool:
    """Whether `handlers/<function>/app.py` exists (the archive is only useful then)."""
    return (repo_root / HANDLERS_DIR / function / "app.py").is_file()


def precompile_archives(
    functions: Iterable[str], runtime_python: RuntimePython, repo_root: Path = REPO_ROOT
) -> None:
    """Compile the sources of the layer and of every function's archive in one run of
    `runtime_python`, so that building each archive afterwards finds its bytecode already made.

    Each start of the interpreter costs about 50 ms: one per archive made a 16-function preview
    about 0.8 s slower on a 2-CPU machine than one for all of them (`fleetctl plan`, 7 pairs).
    """
    entries = layer_entries(repo_root)
    for function in functions:
        entries.update(function_entries(function, repo_root))
    archive_contents(entries, runtime_python)


def build_layer_archive(
    repo_root: Path = REPO_ROOT,
    output_dir: Path | None = None,
    runtime_python: RuntimePython | None = None,
) -> BuiltArchive:
    """Build the shared layer's zip (with `runtime_python`'s bytecode when given); same source
    and interpreter, same bytes and hash."""
    return _write(
        LAYER_NAME,
        zip_bytes(archive_contents(layer_entries(repo_root), runtime_python)),
        output_dir or repo_root / ARCHIVE_DIR,
    )


def build_function_archive(
    function: str,
    repo_root: Path = REPO_ROOT,
    output_dir: Path | None = None,
    runtime_python: RuntimePython | None = None,
) -> BuiltArchive:
    """Build one function's zip (with `runtime_python`'s bytecode when given); same source and
    interpreter, same bytes and hash."""
    return _write(
        function,
        zip_bytes(archive_contents(function_entries(function, repo_root), runtime_python)),
        output_dir or repo_root / ARCHIVE_DIR,
    )
