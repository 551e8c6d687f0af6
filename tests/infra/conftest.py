"""Fixtures of the infrastructure tests: the real program, run offline for each stack file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

STACKS = ("dev", "prod")


@pytest.fixture(scope="session")
def program_runs() -> dict[str, ProgramRun]:
    """Each stack's program run once per test process: runs are deterministic and read-only."""
    return {stack: run_program(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, program_runs: dict[str, ProgramRun]) -> ProgramRun:
    return program_runs[request.param]


@pytest.fixture
def stack_settings_document() -> Callable[[str], dict[str, Any]]:
    """The `lambda-fleet:` settings of a stack file, keyed without the namespace."""

    def read(stack: str) -> dict[str, Any]:
        config = read_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml")
        return {
            key.split(":", 1)[1]: value
            for key, value in config.items()
            if key.startswith("lambda-fleet:")
        }

    return read


@pytest.fixture
def project_with_stack(tmp_path: Path) -> Callable[[str, dict[str, Any]], Path]:
    """A copy of the project's entry point beside a stack file written by the test."""

    def write(stack: str, config: dict[str, Any]) -> Path:
        (tmp_path / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
        return tmp_path

    return write
