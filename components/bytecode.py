"""Bytecode for the archives, compiled by the runtime's own interpreter (standard library only).

Lambda's task root (`/var/task`) and layers (`/opt`) are read-only, so Python cannot cache what
it compiles there: an archive of sources alone is compiled at every cold start (on eks_scaler about
40% of the import of the fleet's own modules). The archives therefore carry, beside each `.py`,
its `__pycache__/<name>.cpython-312.pyc`, which only an interpreter of the runtime's version can
write (the bytecode format changes with every minor version; a 3.11 interpreter's would be
ignored by 3.12).

The bytecode is reproducible, so archives stay byte-for-byte the same for the same source and
the same interpreter:
- checked-hash invalidation (PEP 552): the file holds the source's hash, not its modification
  time, and the runtime still recompiles a module whose source does not match it;
- the path compiled into the code object is the one in the archive, not the checkout's (Python
  rewrites it to the real path when it loads the module);
- `PYTHONHASHSEED=0`: since Python 3.11 marshal writes a set constant in one order whatever the
  seed (bpo-37596), so the seed only keeps any other output ordered by string hashes, from a
  later compiler, out of the bytes.

Where the interpreter comes from, first match: the `LAMBDA_FLEET_RUNTIME_PYTHON` environment
variable (a path; wrong means an error that names it), `python3.12` on PATH, then pyenv's
installed 3.12 versions (`$PYENV_ROOT/versions/3.12.*`, newest first). The stack setting
`lambda-fleet:bytecode` says what happens without one (`components/settings/fleet_settings.py`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from components.exceptions import RuntimePythonError

RUNTIME = "python3.12"
RUNTIME_VERSION = tuple(int(part) for part in RUNTIME.removeprefix("python").split("."))
RUNTIME_PYTHON_VARIABLE = "LAMBDA_FLEET_RUNTIME_PYTHON"

BytecodeMode = Literal["auto", "required", "off"]
BYTECODE_MODES: tuple[str, ...] = get_args(BytecodeMode)

_VERSION_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
# Reads {archive path: base64 source} on stdin, writes {archive path: [archive path of its .pyc,
# base64 bytecode]}.
_COMPILER = """
import base64, importlib.util, json, py_compile, sys, tempfile
from pathlib import Path

sources = json.load(sys.stdin)
compiled = {}
with tempfile.TemporaryDirectory() as scratch:
    source_file = Path(scratch) / "source.py"
    bytecode_file = Path(scratch) / "source.pyc"
    for archive_path, source in sources.items():
        source_file.write_bytes(base64.b64decode(source))
        py_compile.compile(
            str(source_file),
            cfile=str(bytecode_file),
            dfile=archive_path,
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
        )
        compiled[archive_path] = [
            importlib.util.cache_from_source(archive_path),
            base64.b64encode(bytecode_file.read_bytes()).decode(),
        ]
json.dump(compiled, sys.stdout)
"""


@dataclass(frozen=True)
class RuntimePython:
    """An interpreter that writes the runtime's bytecode."""

    executable: str
    version: str


def _compiler_environment() -> dict[str, str]:
    """The caller's environment (a pyenv shim needs its variables) without the PYTHON* ones that
    change what is compiled (PYTHONOPTIMIZE, for one), and with a fixed hash seed."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    return {**inherited, "PYTHONHASHSEED": "0"}


_versions: dict[tuple[object, ...], str | None] = {}
"""(executable, its file's identity, the probe's environment and directory: a pyenv shim's answer
depends on both) -> its version, for the life of the process: every program run looks for the
interpreter, and each probe starts one (about 150 ms)."""


def _version_of(executable: str) -> str | None:
    environment = _compiler_environment()
    try:
        status = os.stat(executable)
    except OSError:
        return None
    key = (
        executable,
        status.st_ino,
        status.st_mtime_ns,
        status.st_size,
        tuple(sorted(environment.items())),
        os.getcwd(),
    )
    if key not in _versions:
        _versions[key] = _probe_version(executable, environment)
    return _versions[key]


def _probe_version(executable: str, environment: Mapping[str, str]) -> str | None:
    try:
        completed = subprocess.run(
            [executable, "-S", "-c", _VERSION_PROBE],
            capture_output=True,
            text=True,
            env=dict(environment),
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _is_runtime_version(version: str | None) -> bool:
    return version is not None and tuple(map(int, version.split(".")[:2])) == RUNTIME_VERSION


def _pyenv_candidates(environment: Mapping[str, str]) -> list[str]:
    root = Path(environment.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    major, minor = RUNTIME_VERSION
    pattern = re.compile(rf"{major}\.{minor}\.(\d+)")
    versions = [
        (int(match.group(1)), path)
        for path in root.glob(f"{major}.{minor}.*")
        if (match := pattern.fullmatch(path.name))
    ]
    return [str(path / "bin" / RUNTIME) for _, path in sorted(versions, reverse=True)]


def find_runtime_python(environment: Mapping[str, str] | None = None) -> RuntimePython | None:
    """The first interpreter of the runtime's version (see the module's docstring), or None.

    Raises RuntimePythonError when LAMBDA_FLEET_RUNTIME_PYTHON is set to anything else: a path
    the engineer named is never silently replaced by another interpreter.
    """
    environment = os.environ if environment is None else environment
    named = environment.get(RUNTIME_PYTHON_VARIABLE)
    if named:
        version = _version_of(named)
        if not _is_runtime_version(version):
            found = f"Python {version}" if version else "not a Python interpreter that runs"
            raise RuntimePythonError(
                f"{RUNTIME_PYTHON_VARIABLE}={named[:80]!r} is {found}; "
                f"it must name a Python {'.'.join(map(str, RUNTIME_VERSION))} interpreter"
            )
        return RuntimePython(named, version or "")
    on_path = shutil.which(RUNTIME, path=environment.get("PATH"))
    for candidate in ([on_path] if on_path else []) + _pyenv_candidates(environment):
        version = _version_of(candidate)
        if _is_runtime_version(version):
            return RuntimePython(candidate, version or "")
    return None


_compiled: dict[tuple[str, str, str], tuple[str, bytes]] = {}
"""(executable, archive path, source digest) -> (archive path of the .pyc, bytecode), for the
life of the process: the program and the tests build the same archives many times."""


def compile_bytecode(
    runtime_python: RuntimePython, sources: Mapping[str, bytes]
) -> dict[str, bytes]:
    """`{archive path of the .pyc: bytecode}` for every `.py` among `{archive path: source}`."""
    wanted = {
        archive_path: (runtime_python.executable, archive_path, hashlib.sha256(source).hexdigest())
        for archive_path, source in sources.items()
        if archive_path.endswith(".py")
    }
    missing = {path: sources[path] for path, key in wanted.items() if key not in _compiled}
    if missing:
        for source_path, compiled in _run_compiler(runtime_python, missing).items():
            _compiled[wanted[source_path]] = compiled
    return dict(_compiled[key] for key in wanted.values())


def _run_compiler(
    runtime_python: RuntimePython, sources: Mapping[str, bytes]
) -> dict[str, tuple[str, bytes]]:
    request = {path: base64.b64encode(source).decode() for path, source in sources.items()}
    completed = subprocess.run(
        [runtime_python.executable, "-S", "-c", _COMPILER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=_compiler_environment(),
        timeout=300,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimePythonError(
            f"{runtime_python.executable} could not compile the fleet's code:\n"
            f"{completed.stderr[-2000:]}"
        )
    return {
        source_path: (bytecode_path, base64.b64decode(data))
        for source_path, (bytecode_path, data) in json.loads(completed.stdout).items()
    }


def runtime_python_for(
    mode: BytecodeMode, environment: Mapping[str, str] | None = None
) -> RuntimePython | None:
    """The interpreter the archives' bytecode comes from under the stack's `bytecode` setting:
    none when `off`, or when `auto` finds none; `required` raises RuntimePythonError instead."""
    if mode == "off":
        return None
    found = find_runtime_python(environment)
    if found is None and mode == "required":
        raise RuntimePythonError(
            f"no Python {'.'.join(map(str, RUNTIME_VERSION))} found ({RUNTIME_PYTHON_VARIABLE}, "
            f"{RUNTIME} on PATH, pyenv): install it or name it in {RUNTIME_PYTHON_VARIABLE}"
        )
    return found
