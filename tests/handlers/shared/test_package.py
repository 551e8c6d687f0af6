"""The layer package's import-time contract: cheap to import, and never pulumi."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import fleet_shared

HEAVY_OR_FORBIDDEN = ("pandas", "numpy", "pulumi", "pulumi_aws")


def imported_modules(statement: str) -> set[str]:
    """The top-level modules loaded by `statement` in a fresh interpreter."""
    handlers_dir = Path(fleet_shared.__file__).parent.parent
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=handlers_dir,
    ).stdout
    return {name.split(".")[0] for name in json.loads(output)}


def test_importing_the_package_loads_none_of_its_modules() -> None:
    # GIVEN a fresh interpreter WHEN `fleet_shared` is imported THEN no submodule, boto3 or
    # pydantic is loaded yet
    loaded = imported_modules("import fleet_shared")
    assert "fleet_shared" in loaded
    assert not {"boto3", "pydantic", "aws_lambda_powertools"} & loaded


def test_no_module_pulls_in_pandas_numpy_or_pulumi() -> None:
    # GIVEN every module of the package
    names = [module.name for module in pkgutil.iter_modules(fleet_shared.__path__)]
    assert "state_table" in names
    statement = "; ".join(f"import fleet_shared.{name}" for name in names)
    # WHEN all are imported in a fresh interpreter THEN none of the heavy libraries is loaded
    assert not set(HEAVY_OR_FORBIDDEN) & imported_modules(statement)
