"""The archives' bytecode: compiled by the runtime's Python, loaded by it without compiling,
reproducible, and found (or refused) as the stack's `bytecode` setting says."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from catalog import FUNCTIONS
from components import bytecode, stack_config
from components.archives import build_function_archive, build_layer_archive, precompile_archives
from components.bytecode import (
    RUNTIME_PYTHON_VARIABLE,
    RuntimePython,
    find_runtime_python,
    runtime_python_for,
)
from components.exceptions import RuntimePythonError, StackSettingsError
from components.settings import load_settings
from fleetctl.local_world import stack_settings
from fleetctl.mocked_program import REPO_ROOT

RUNTIME_PYTHON = find_runtime_python()
needs_runtime_python = pytest.mark.skipif(
    RUNTIME_PYTHON is None, reason="no Python 3.12 (the functions' runtime) on this machine"
)
NO_INTERPRETER = {"PATH": "", "PYENV_ROOT": "/nonexistent"}

# Run by the runtime's Python: load every module's code through the import system's own loader,
# which refuses to compile, so a module without valid bytecode beside it fails.
_LOAD_WITHOUT_COMPILING = """
import sys
from importlib.machinery import SourceFileLoader
from pathlib import Path


class BytecodeOnly(SourceFileLoader):
    def source_to_code(self, data, path, *, _optimize=-1):
        raise SystemExit(f"{path} has no valid bytecode: it would be compiled")


root = Path(sys.argv[1])
sources = sorted(root.rglob("*.py"))
for source in sources:
    BytecodeOnly(source.stem, str(source)).get_code(source.stem)
print(len(sources))
"""


def _unzip_read_only(archive: Path, destination: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(destination)
        names = zipped.namelist()
    for path in destination.rglob("*"):
        path.chmod(stat.S_IREAD | (stat.S_IEXEC if path.is_dir() else 0))
    destination.chmod(stat.S_IREAD | stat.S_IEXEC)
    return names


def _writable_again(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(stat.S_IRWXU)


def _copy_of_handlers(destination: Path) -> Path:
    shutil.copytree(
        REPO_ROOT / "handlers",
        destination / "handlers",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return destination


@needs_runtime_python
def test_every_module_of_every_archive_loads_from_the_runtimes_bytecode(tmp_path: Path):
    # GIVEN every archive the program builds, with the runtime's interpreter found
    zips = tmp_path / "zips"
    archives = [build_layer_archive(output_dir=zips, runtime_python=RUNTIME_PYTHON)]
    archives += [
        build_function_archive(spec.name, output_dir=zips, runtime_python=RUNTIME_PYTHON)
        for spec in FUNCTIONS
    ]
    for archive in archives:
        # WHEN one is unpacked read-only, as Lambda's /var/task and /opt are
        unpacked = tmp_path / archive.path.stem
        names = _unzip_read_only(archive.path, unpacked)
        try:
            completed = subprocess.run(
                [RUNTIME_PYTHON.executable, "-S", "-c", _LOAD_WITHOUT_COMPILING, str(unpacked)],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            _writable_again(unpacked)
        # THEN each source has the runtime's bytecode beside it, and the runtime loads all of
        # them without compiling one
        sources = [name for name in names if name.endswith(".py")]
        assert sorted(name for name in names if name.endswith(".pyc")) == sorted(
            f"{name.rsplit('/', 1)[0]}/__pycache__/{Path(name).stem}.cpython-312.pyc"
            for name in sources
        )
        assert completed.returncode == 0, completed.stderr
        assert completed.stdout.strip() == str(len(sources))


@needs_runtime_python
def test_a_source_changed_after_the_build_is_compiled_again_not_run_from_stale_bytecode(
    tmp_path: Path,
):
    # GIVEN eks_scaler's archive with the runtime's bytecode, unpacked, and one of its sources
    # edited afterwards (docs/architecture.md: checked-hash bytecode, PEP 552)
    archive = build_function_archive(
        "eks_scaler", output_dir=tmp_path, runtime_python=RUNTIME_PYTHON
    )
    unpacked = tmp_path / "task"
    _unzip_read_only(archive.path, unpacked)
    _writable_again(unpacked)
    module = unpacked / "handlers" / "eks_scaler" / "app.py"
    module.write_text(module.read_text() + "\nEDITED = True\n")
    # WHEN the runtime loads every module through a loader that refuses to compile
    completed = subprocess.run(
        [RUNTIME_PYTHON.executable, "-S", "-c", _LOAD_WITHOUT_COMPILING, str(unpacked)],
        capture_output=True,
        text=True,
        check=False,
    )
    # THEN the edited module's bytecode is refused for its source, so it would be compiled
    assert completed.returncode == 1
    assert completed.stderr.strip() == f"{module} has no valid bytecode: it would be compiled"


@needs_runtime_python
def test_bytecode_is_the_same_from_any_checkout_and_any_compiler_run(tmp_path: Path):
    # GIVEN two checkouts at different paths, with different file times
    first, second = _copy_of_handlers(tmp_path / "a"), _copy_of_handlers(tmp_path / "deeper" / "b")
    for path in second.rglob("*.py"):
        os.utime(path, (1_800_000_000, 1_800_000_000))
    built = []
    for checkout in (first, second):
        # WHEN the archives are built, each time by a new compiler process
        bytecode._compiled.clear()
        built.append(
            [
                build_function_archive("eks_scaler", checkout, tmp_path / "zips", RUNTIME_PYTHON),
                build_layer_archive(checkout, tmp_path / "zips", RUNTIME_PYTHON),
            ]
        )
    # THEN they are byte-identical
    for one, other in zip(*built, strict=True):
        assert one.path.read_bytes() == other.path.read_bytes()
        assert one.sha256_base64 == other.sha256_base64


@needs_runtime_python
def test_precompiling_starts_the_interpreter_once_and_changes_no_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN every archive built the usual way, one compiler run per archive
    names = [spec.name for spec in FUNCTIONS]
    bytecode._compiled.clear()
    one_by_one = [
        build_function_archive(name, REPO_ROOT, tmp_path / "a", RUNTIME_PYTHON) for name in names
    ]
    one_by_one.append(build_layer_archive(REPO_ROOT, tmp_path / "a", RUNTIME_PYTHON))
    compiler_runs: list[int] = []
    run_compiler = bytecode._run_compiler

    def counted(runtime_python: RuntimePython, sources: dict[str, bytes]):
        compiler_runs.append(len(sources))
        return run_compiler(runtime_python, sources)

    monkeypatch.setattr(bytecode, "_run_compiler", counted)
    bytecode._compiled.clear()
    # WHEN they are precompiled together, then built again
    precompile_archives(names, RUNTIME_PYTHON)
    together = [
        build_function_archive(name, REPO_ROOT, tmp_path / "b", RUNTIME_PYTHON) for name in names
    ]
    together.append(build_layer_archive(REPO_ROOT, tmp_path / "b", RUNTIME_PYTHON))
    # THEN the interpreter ran once, and every archive is byte-identical
    assert len(compiler_runs) == 1
    assert [archive.sha256_hex for archive in together] == [
        archive.sha256_hex for archive in one_by_one
    ]


@needs_runtime_python
def test_the_callers_python_variables_do_not_change_the_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN the bytecode of the layer as compiled with a clean environment
    bytecode._compiled.clear()
    clean = build_layer_archive(output_dir=tmp_path / "clean", runtime_python=RUNTIME_PYTHON)
    # WHEN it is compiled again by a caller that optimises and randomises string hashes
    monkeypatch.setenv("PYTHONOPTIMIZE", "2")
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    bytecode._compiled.clear()
    noisy = build_layer_archive(output_dir=tmp_path / "noisy", runtime_python=RUNTIME_PYTHON)
    # THEN the archive is the same: unoptimised bytecode, in the files the runtime looks for
    assert noisy.path.read_bytes() == clean.path.read_bytes()


@needs_runtime_python
def test_a_changed_source_gets_new_bytecode(tmp_path: Path):
    # GIVEN a checkout whose archive was built once
    checkout = _copy_of_handlers(tmp_path / "repo")
    before = build_function_archive("eks_scaler", checkout, tmp_path / "zips", RUNTIME_PYTHON)
    # WHEN one module changes and the archive is built again in the same process
    module = checkout / "handlers" / "eks_scaler" / "app.py"
    module.write_text(module.read_text() + "\nCHANGED = True\n")
    after = build_function_archive("eks_scaler", checkout, tmp_path / "zips", RUNTIME_PYTHON)
    # THEN that module's bytecode, and only that one, differs
    changed = []
    with zipfile.ZipFile(before.path) as old, zipfile.ZipFile(after.path) as new:
        assert old.namelist() == new.namelist()
        changed = [name for name in old.namelist() if old.read(name) != new.read(name)]
    assert changed == [
        "handlers/eks_scaler/__pycache__/app.cpython-312.pyc",
        "handlers/eks_scaler/app.py",
    ]


def test_without_an_interpreter_the_archives_carry_sources_only(tmp_path: Path):
    # GIVEN no interpreter WHEN an archive is built
    archive = build_function_archive("eks_scaler", output_dir=tmp_path)
    # THEN it has no bytecode
    with zipfile.ZipFile(archive.path) as zipped:
        assert not [name for name in zipped.namelist() if "__pycache__" in name]


def test_a_named_interpreter_of_another_version_is_refused_with_the_variable(tmp_path: Path):
    # GIVEN LAMBDA_FLEET_RUNTIME_PYTHON naming an interpreter that answers the version probe with
    # 3.11.7 (a stand-in: the suite itself may run on 3.12, the runtime's version)
    other_version = tmp_path / "python3.11"
    other_version.write_text("#!/bin/sh\necho 3.11.7\n")
    other_version.chmod(0o755)
    # WHEN it is looked up
    with pytest.raises(RuntimePythonError) as raised:
        find_runtime_python({**NO_INTERPRETER, RUNTIME_PYTHON_VARIABLE: str(other_version)})
    # THEN the message names the variable, the version found and the version needed
    message = str(raised.value)
    assert message.startswith(f"{RUNTIME_PYTHON_VARIABLE}=")
    assert "is Python 3.11.7" in message
    assert message.endswith("it must name a Python 3.12 interpreter")


def test_a_named_interpreter_that_does_not_run_is_refused_and_not_replaced(tmp_path: Path):
    # GIVEN the variable naming a file that does not exist, and 3.12 on PATH
    missing = str(tmp_path / "python3.12")
    environment = {RUNTIME_PYTHON_VARIABLE: missing, "PATH": os.environ["PATH"]}
    # WHEN it is looked up THEN it is refused, not swapped for the one on PATH
    with pytest.raises(RuntimePythonError, match="not a Python interpreter that runs"):
        find_runtime_python(environment)


def test_no_interpreter_anywhere_is_none():
    assert find_runtime_python(NO_INTERPRETER) is None


@needs_runtime_python
def test_pyenvs_newest_runtime_version_is_found_when_path_has_none(tmp_path: Path):
    # GIVEN a pyenv root with 3.12.9, 3.12.10 and 3.13.0, and no python3.12 on PATH
    for version in ("3.12.9", "3.12.10", "3.13.0"):
        executable = tmp_path / "versions" / version / "bin" / "python3.12"
        executable.parent.mkdir(parents=True)
        executable.symlink_to(RUNTIME_PYTHON.executable)
    # WHEN the interpreter is looked up
    found = find_runtime_python({"PATH": "", "PYENV_ROOT": str(tmp_path)})
    # THEN it is 3.12.10's (numerically newest of the runtime's minor version)
    assert found is not None
    assert found.executable == str(tmp_path / "versions" / "3.12.10" / "bin" / "python3.12")


def test_off_never_looks_for_an_interpreter():
    # GIVEN a variable that would be refused WHEN the setting is off THEN nothing is looked up
    assert runtime_python_for("off", {RUNTIME_PYTHON_VARIABLE: sys.executable}) is None


def test_auto_without_an_interpreter_builds_sources_only():
    assert runtime_python_for("auto", NO_INTERPRETER) is None


def test_required_without_an_interpreter_stops_the_program_naming_the_setting(monkeypatch):
    # GIVEN the dev stack set to `bytecode: required` on a machine without Python 3.12
    settings = stack_settings("dev").model_copy(update={"bytecode": "required"})
    for name, value in NO_INTERPRETER.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(RUNTIME_PYTHON_VARIABLE, raising=False)
    # WHEN the program looks for the interpreter
    with pytest.raises(StackSettingsError) as raised:
        stack_config.archive_runtime_python(settings, "dev")
    # THEN one message names the stack file, the setting and where it looked
    assert str(raised.value) == (
        "Pulumi.dev.yaml: bytecode: no Python 3.12 found (LAMBDA_FLEET_RUNTIME_PYTHON, python3.12 "
        "on PATH, pyenv): install it or name it in LAMBDA_FLEET_RUNTIME_PYTHON"
    )


@needs_runtime_python
def test_the_compiler_failing_is_an_error_with_its_message(tmp_path: Path):
    # GIVEN a source that is not valid Python WHEN it is compiled
    broken = RuntimePython(RUNTIME_PYTHON.executable, RUNTIME_PYTHON.version)
    with pytest.raises(RuntimePythonError, match="could not compile") as raised:
        bytecode.compile_bytecode(broken, {"handlers/broken.py": b"def (:\n"})
    # THEN the compiler's own error is in the message
    assert "SyntaxError" in str(raised.value)


def test_an_unknown_bytecode_mode_is_named_with_the_mode_it_resembles():
    # GIVEN the dev settings with a misspelt mode WHEN they are validated
    settings = stack_settings("dev").model_dump(mode="json", exclude_defaults=True)
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", {**settings, "bytecode": "requird"})
    # THEN one line names the field and the nearest mode
    assert str(raised.value) == (
        "Pulumi.dev.yaml: bytecode: unknown bytecode mode 'requird'; did you mean 'required'?"
    )


def test_auto_without_an_interpreter_warns_that_cold_starts_will_compile(monkeypatch):
    # GIVEN the dev stack (bytecode: auto) on a machine without Python 3.12
    for name, value in NO_INTERPRETER.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(RUNTIME_PYTHON_VARIABLE, raising=False)
    warnings: list[str] = []
    monkeypatch.setattr(
        stack_config.pulumi.log, "warn", lambda message, **_: warnings.append(message)
    )
    # WHEN the program looks for the interpreter
    found = stack_config.archive_runtime_python(stack_settings("dev"), "dev")
    # THEN the archives carry sources, and one warning says so and how to make it an error
    assert found is None
    assert len(warnings) == 1
    assert "archives carry Python sources only" in warnings[0]
    assert "lambda-fleet:bytecode: required" in warnings[0]
