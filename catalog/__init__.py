"""The catalog of fleet functions: plain data shared by the infrastructure and the local tools."""

from __future__ import annotations

from catalog.functions import FUNCTIONS, FUNCTIONS_BY_NAME, function_spec
from catalog.model import FunctionSpec

__all__ = ["FUNCTIONS", "FUNCTIONS_BY_NAME", "FunctionSpec", "function_spec"]
