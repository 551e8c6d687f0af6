"""The interpreter the cold-start benchmark runs the handlers with.

Preferably the functions' own runtime, Python 3.12 (found as the program finds it,
`components/bytecode.py`), in a virtual environment of the libraries Lambda provides them
(`handlers/requirements.txt`: the runtime's boto3, the managed layers' Powertools, pydantic and
pandas), so that the archives' own bytecode is what runs. The environment is created under
`build/runtime-venv` on first use and again when the requirements or the interpreter change.
Without a 3.12 interpreter, this benchmark's own interpreter and environment stand in.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from components.bytecode import RuntimePython, find_runtime_python

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "handlers" / "requirements.txt"
RUNTIME_VENV = REPO_ROOT / "build" / "runtime-venv"
_STAMP = ".installed-sha256"


def _installed(runtime: RuntimePython) -> Path:
    """The runtime venv's interpreter, with the requirements installed for `runtime`."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + runtime.version.encode()).hexdigest()
    stamp = RUNTIME_VENV / _STAMP
    python = RUNTIME_VENV / "bin" / "python"
    if not stamp.is_file() or stamp.read_text() != digest:
        shutil.rmtree(RUNTIME_VENV, ignore_errors=True)
        print(f"creating {RUNTIME_VENV.relative_to(REPO_ROOT)} (Python {runtime.version})")
        subprocess.run([runtime.executable, "-m", "venv", str(RUNTIME_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(digest)
    return python


def handler_interpreter() -> RuntimePython:
    """The runtime venv's Python 3.12, or this interpreter when no 3.12 is found."""
    runtime = find_runtime_python()
    if runtime is None:
        return RuntimePython(sys.executable, platform.python_version())
    return RuntimePython(str(_installed(runtime)), runtime.version)
