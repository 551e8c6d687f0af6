"""Package sizes: the shared layer and every function archive, zipped and unzipped."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from catalog import FUNCTIONS
from components.archives import BuiltArchive, build_function_archive, build_layer_archive


def _sizes(built: BuiltArchive) -> tuple[int, int, int]:
    with zipfile.ZipFile(built.path) as archive:
        entries = archive.infolist()
        return built.path.stat().st_size, sum(entry.file_size for entry in entries), len(entries)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory)
        rows = [("shared layer", build_layer_archive(output_dir=output))]
        rows += [
            (spec.name, build_function_archive(spec.name, output_dir=output)) for spec in FUNCTIONS
        ]
        print(f"{'archive':<22} {'zipped KB':>10} {'unzipped KB':>12} {'files':>6}  sha256")
        for name, built in rows:
            zipped, unzipped, files = _sizes(built)
            print(
                f"{name:<22} {zipped / 1024:>10.1f} {unzipped / 1024:>12.1f} {files:>6}  "
                f"{built.sha256_hex[:16]}"
            )
