"""Deterministic archives: same source, same bytes on any machine, no caches, fixed timestamps
and modes, entries stored (the bytes DEFLATE gives depend on the zlib Python links)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog import FUNCTIONS
from components.archives import (
    FIXED_DATE_TIME,
    build_function_archive,
    build_layer_archive,
)
from fleetctl.mocked_program import REPO_ROOT

_ZLIB_COMPRESSOBJ = zlib.compressobj
# General purpose flag bit 3: the sizes and CRC follow the entry's data instead of its header.
DATA_DESCRIPTOR_FLAG = 0x08


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A repository with a function, the shared package, and the caches Python leaves behind."""
    root = tmp_path / "repo"
    files = {
        "handlers/__init__.py": "",
        "handlers/eks_scaler/__init__.py": "",
        "handlers/eks_scaler/app.py": "def lambda_handler(event, context):\n    return event\n",
        "handlers/eks_scaler/rules/floors.py": "FLOOR = 1\n",
        "handlers/eks_scaler/__pycache__/app.cpython-312.pyc": "cache",
        "handlers/eks_scaler/stale.pyc": "cache",
        "handlers/fleet_shared/__init__.py": "",
        "handlers/fleet_shared/sessions.py": "SESSIONS = {}\n",
        "handlers/fleet_shared/__pycache__/sessions.cpython-312.pyc": "cache",
        "handlers/other_function/app.py": "OTHER = 1\n",
    }
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def _touch_everything(root: Path, timestamp: int) -> None:
    for path in root.rglob("*"):
        os.utime(path, (timestamp, timestamp))
        if path.is_file():
            path.chmod(0o755 if timestamp % 2 else 0o600)


def test_two_builds_of_the_same_source_are_byte_identical(source_tree: Path, tmp_path: Path):
    # GIVEN the same source, with different file times and modes between the two builds
    _touch_everything(source_tree, 1_700_000_000)
    first = build_function_archive("eks_scaler", source_tree, tmp_path / "first")
    first_layer = build_layer_archive(source_tree, tmp_path / "first")
    _touch_everything(source_tree, 1_800_000_001)
    second = build_function_archive("eks_scaler", source_tree, tmp_path / "second")
    second_layer = build_layer_archive(source_tree, tmp_path / "second")
    # THEN the archives have the same bytes, hashes and names
    assert first.path.read_bytes() == second.path.read_bytes()
    assert (first.sha256_base64, first.path.name) == (second.sha256_base64, second.path.name)
    assert first_layer.path.read_bytes() == second_layer.path.read_bytes()
    assert first_layer.sha256_hex == second_layer.sha256_hex
    assert first.path.name == f"eks_scaler-{first.sha256_hex[:16]}.zip"


def test_every_catalog_archive_of_this_repository_builds_identically_twice(tmp_path: Path):
    for spec in FUNCTIONS:
        first = build_function_archive(spec.name, REPO_ROOT, tmp_path / "a")
        second = build_function_archive(spec.name, REPO_ROOT, tmp_path / "b")
        assert first.path.read_bytes() == second.path.read_bytes(), spec.name
        assert first.sha256_base64 == second.sha256_base64
    assert (
        build_layer_archive(REPO_ROOT, tmp_path / "a").path.read_bytes()
        == build_layer_archive(REPO_ROOT, tmp_path / "b").path.read_bytes()
    )


def test_function_archive_holds_its_folder_and_the_handlers_package_only(
    source_tree: Path, tmp_path: Path
):
    archive = build_function_archive("eks_scaler", source_tree, tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        names = zf.namelist()
    assert names == sorted(names)
    assert names == [
        "handlers/__init__.py",
        "handlers/eks_scaler/__init__.py",
        "handlers/eks_scaler/app.py",
        "handlers/eks_scaler/rules/floors.py",
    ]


def test_layer_archive_lays_out_the_shared_package_under_python(source_tree: Path, tmp_path: Path):
    archive = build_layer_archive(source_tree, tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        assert zf.namelist() == [
            "python/fleet_shared/__init__.py",
            "python/fleet_shared/sessions.py",
        ]


def test_archives_have_fixed_timestamps_modes_and_no_caches(source_tree: Path, tmp_path: Path):
    for archive in (
        build_function_archive("eks_scaler", source_tree, tmp_path),
        build_layer_archive(source_tree, tmp_path),
    ):
        with zipfile.ZipFile(archive.path) as zf:
            for info in zf.infolist():
                assert info.date_time == FIXED_DATE_TIME == (1980, 1, 1, 0, 0, 0)
                assert (info.external_attr >> 16) & 0o777 == 0o644
                assert "__pycache__" not in info.filename
                assert not info.filename.endswith(".pyc")


def _unusable_compressor(*args: object, **kwargs: object) -> object:
    raise AssertionError("zlib compressed an archive entry")


def _compressor_of_another_zlib(*args: object, **kwargs: object) -> object:
    """A compressor whose valid DEFLATE stream differs from this zlib's at level 9, as zlib-ng's
    or another zlib version's does for the same input."""
    return _ZLIB_COMPRESSOBJ(1, zlib.DEFLATED, -15, 1, zlib.Z_FILTERED)


@pytest.mark.parametrize(
    "compressobj",
    [_unusable_compressor, _compressor_of_another_zlib],
    ids=["zlib-unusable", "zlib-compressing-differently"],
)
def test_archives_are_byte_identical_whatever_zlib_the_building_python_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressobj: Callable[..., object]
):
    # GIVEN this repository's eks_scaler and layer archives built as usual
    usual = [
        build_function_archive("eks_scaler", REPO_ROOT, tmp_path / "usual"),
        build_layer_archive(REPO_ROOT, tmp_path / "usual"),
    ]
    # WHEN they are built again by a Python whose zlib compresses differently, or not at all
    monkeypatch.setattr(zlib, "compressobj", compressobj)
    monkeypatch.setattr(zlib, "compress", compressobj)
    other = [
        build_function_archive("eks_scaler", REPO_ROOT, tmp_path / "other"),
        build_layer_archive(REPO_ROOT, tmp_path / "other"),
    ]
    # THEN every byte is the same: no compressor is on the path from the sources to the archive
    for built, rebuilt in zip(usual, other, strict=True):
        assert rebuilt.path.read_bytes() == built.path.read_bytes(), built.path.name
        assert rebuilt.sha256_base64 == built.sha256_base64


def test_every_entry_of_every_archive_is_stored_uncompressed(tmp_path: Path):
    # GIVEN this repository's layer and every catalog function's archive
    archives = [build_layer_archive(REPO_ROOT, tmp_path)] + [
        build_function_archive(spec.name, REPO_ROOT, tmp_path) for spec in FUNCTIONS
    ]
    for archive in archives:
        # WHEN their entries are listed
        with zipfile.ZipFile(archive.path) as zf:
            entries = zf.infolist()
        # THEN each is stored: its bytes in the archive are the file's own, no compressor's; and
        # its sizes are in its header, not in a data descriptor after it, which some readers
        # (Java's ZipInputStream) refuse on a stored entry
        assert entries, archive.path.name
        for info in entries:
            assert info.compress_type == zipfile.ZIP_STORED, (archive.path.name, info.filename)
            assert info.compress_size == info.file_size, (archive.path.name, info.filename)
            assert not info.flag_bits & DATA_DESCRIPTOR_FLAG, (archive.path.name, info.filename)


@pytest.mark.parametrize("umask", [0o002, 0o077], ids=["umask-002", "umask-077"])
def test_the_builders_umask_changes_no_byte_of_the_archives(
    source_tree: Path, tmp_path: Path, umask: int
):
    # GIVEN the archives built under the usual umask 022
    usual = os.umask(0o022)
    try:
        function = build_function_archive("eks_scaler", source_tree, tmp_path / "usual")
        layer = build_layer_archive(source_tree, tmp_path / "usual")
        # WHEN they are built again by someone whose umask differs (002 is many a desktop's)
        os.umask(umask)
        other_function = build_function_archive("eks_scaler", source_tree, tmp_path / "other")
        other_layer = build_layer_archive(source_tree, tmp_path / "other")
    finally:
        os.umask(usual)
    # THEN every entry still has mode 0644, and the archives are byte-identical
    for archive in (other_function, other_layer):
        with zipfile.ZipFile(archive.path) as zf:
            assert {(info.external_attr >> 16) & 0o777 for info in zf.infolist()} == {0o644}
    assert other_function.path.read_bytes() == function.path.read_bytes()
    assert other_layer.path.read_bytes() == layer.path.read_bytes()


def test_hidden_files_and_folders_left_by_editors_and_the_os_stay_out(
    source_tree: Path, tmp_path: Path
):
    # GIVEN a checkout in which an editor and the OS left hidden files and a hidden folder
    hidden = [
        "handlers/eks_scaler/.DS_Store",
        "handlers/eks_scaler/.app.py.swp",
        "handlers/fleet_shared/.idea/workspace.xml",
    ]
    for relative in hidden:
        (source_tree / relative).parent.mkdir(parents=True, exist_ok=True)
        (source_tree / relative).write_text("local state")
    # WHEN the function and the layer archives are built
    function = build_function_archive("eks_scaler", source_tree, tmp_path / "with")
    layer = build_layer_archive(source_tree, tmp_path / "with")
    # THEN they are the archives of the same checkout without those files, byte for byte
    for relative in hidden:
        (source_tree / relative).unlink()
    assert function.path.read_bytes() == (
        build_function_archive("eks_scaler", source_tree, tmp_path / "without").path.read_bytes()
    )
    assert layer.path.read_bytes() == (
        build_layer_archive(source_tree, tmp_path / "without").path.read_bytes()
    )


def test_a_function_folder_not_written_yet_gives_the_handlers_package_alone(
    source_tree: Path, tmp_path: Path
):
    archive = build_function_archive("not_written_yet", source_tree, tmp_path)
    with zipfile.ZipFile(archive.path) as zf:
        assert zf.namelist() == ["handlers/__init__.py"]


@pytest.mark.parametrize("module", ["components.archives", "components.schedule_payloads"])
def test_modules_shared_with_local_tools_do_not_import_pulumi(module: str):
    code = f"import sys, {module}; sys.exit('pulumi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False).returncode == 0
