"""Package sizes: the shared layer and every function archive, zipped and unzipped, as the dev
stack builds them (with the runtime's bytecode when its interpreter is found: `bytecode: auto`)."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from catalog import FUNCTIONS
from components.archives import BuiltArchive, build_function_archive, build_layer_archive
from components.bytecode import runtime_python_for
from fleetctl.local_world import stack_settings

STACK = "dev"


def _sizes(built: BuiltArchive) -> tuple[int, int, int]:
    with zipfile.ZipFile(built.path) as archive:
        entries = archive.infolist()
        return built.path.stat().st_size, sum(entry.file_size for entry in entries), len(entries)


def main() -> None:
    runtime_python = runtime_python_for(stack_settings(STACK).bytecode)
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory)
        rows = [
            ("shared layer", build_layer_archive(output_dir=output, runtime_python=runtime_python))
        ]
        rows += [
            (
                spec.name,
                build_function_archive(spec.name, output_dir=output, runtime_python=runtime_python),
            )
            for spec in FUNCTIONS
        ]
        compiled = f"Python {runtime_python.version}" if runtime_python else "none: sources only"
        print(f"stack {STACK}; bytecode: {compiled}")
        print(f"{'archive':<22} {'zipped KB':>10} {'unzipped KB':>12} {'files':>6}  sha256")
        for name, built in rows:
            zipped, unzipped, files = _sizes(built)
            print(
                f"{name:<22} {zipped / 1024:>10.1f} {unzipped / 1024:>12.1f} {files:>6}  "
                f"{built.sha256_hex[:16]}"
            )
