"""The README's "Two commands" and "The real path": what `make demo` and `make test` run, the
Pythons `make` accepts, and the virtualenv Pulumi creates."""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from fleetctl.mocked_program import REPO_ROOT


def _readme() -> str:
    return " ".join((REPO_ROOT / "README.md").read_text().split())


def _planned_commands(target: str) -> list[str]:
    """The commands `make <target>` would run (`make -n` prints them and runs none), also when
    the suite itself runs under `make test` (a sub-make would print the directories)."""
    environment = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL"}}
    completed = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=environment,
    )
    return completed.stdout.splitlines()


def test_make_demo_runs_fleetctl_demo_for_the_dev_stack_after_installing() -> None:
    # GIVEN the README's word: `make demo` creates .venv if missing, installs, and replays the
    # dev stack's day, and `fleetctl demo` is "the command `make demo` runs"
    assert "make demo # creates .venv if missing, installs, and replays" in _readme()
    # WHEN make says what `make demo` would run
    commands = _planned_commands("demo")
    # THEN it ends with the demo of the dev stack, after the install step when one is due
    assert commands[-1] == ".venv/bin/python -m fleetctl demo --stack dev"
    assert all("fleetctl demo" not in command for command in commands[:-1])


def test_make_test_runs_both_linters_then_the_whole_suite() -> None:
    # GIVEN the README's word: `make test` runs lint and the whole test suite
    assert "runs lint and the whole test suite" in _readme()
    # WHEN make says what `make test` would run
    commands = _planned_commands("test")
    # THEN the linters run first, then pytest over everything (no path, no -k, no marker)
    assert commands[-3:] == [
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/python -m pytest -q",
    ]


def test_make_accepts_the_python_versions_the_readme_names() -> None:
    # GIVEN the README's "Python 3.11 to 3.13"
    low, high = re.search(r"with Python 3\.(\d+) to 3\.(\d+)", _readme()).groups()
    # WHEN the Makefile's check of the interpreter that creates .venv is read
    makefile = (REPO_ROOT / "Makefile").read_text()
    bounds = re.search(r"\(3, (\d+)\) <= sys\.version_info\[:2\] <= \(3, (\d+)\)", makefile)
    # THEN it accepts exactly those versions, and its refusal names them
    assert bounds and bounds.groups() == (low, high)
    assert f"lambda-fleet needs 3.{low} to 3.{high}" in makefile


def test_pulumi_creates_the_virtualenv_from_requirements_txt() -> None:
    # GIVEN the README's "Pulumi creates .venv from requirements.txt (see Pulumi.yaml)"
    assert "Pulumi creates `.venv` from `requirements.txt` (see `Pulumi.yaml`)" in _readme()
    # WHEN Pulumi.yaml's runtime options are read
    options = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]
    # THEN pip installs the project's requirements.txt into .venv
    assert options == {"toolchain": "pip", "virtualenv": ".venv"}
    assert (REPO_ROOT / "requirements.txt").is_file()
