"""What the analyzer works with: the fleet's services typed with its environment (it needs
nothing more)."""

from __future__ import annotations

from fleet_shared.function_services import FunctionServices
from handlers.performance_analyzer.environment import PerformanceEnvironment

FUNCTION_NAME = "performance_analyzer"

PerformanceServices = FunctionServices[PerformanceEnvironment]
