"""The program's side imports no handler code: of `handlers/` only the shared layer's pure model
modules (README, Repository layout, contributing and license; CONTRIBUTING, Code style)."""

from __future__ import annotations

import json
import subprocess
import sys

from fleetctl.mocked_program import REPO_ROOT

_LOADED_BY_THE_PROGRAMS_PACKAGES = """
import importlib, json, pkgutil, sys
sys.path[:0] = [".", "handlers"]
for package in ("catalog", "components"):
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
print(json.dumps(sorted(sys.modules)))
"""

# What only handler code may load: AWS calls, Powertools' runtime utilities.
AWS_RUNTIME_MODULES = ("boto3", "botocore", "aws_lambda_powertools")


def test_components_and_catalog_load_no_handler_and_no_aws_client_code():
    # GIVEN every module of components/ and catalog/, imported in a fresh interpreter that sees
    # handlers/ as Lambda's layer path
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", _LOADED_BY_THE_PROGRAMS_PACKAGES],
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    # WHEN the loaded modules are listed
    top_level = {name.split(".", 1)[0] for name in loaded}
    # THEN no handler package is among them, and of the shared layer only modules that need no
    # AWS client (nothing loaded boto3, botocore or Powertools)
    assert "handlers" not in top_level
    assert not top_level & set(AWS_RUNTIME_MODULES)
    assert "fleet_shared.inventory" in loaded
