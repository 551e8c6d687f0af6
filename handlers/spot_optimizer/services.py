"""What the optimizer works with: the fleet's services typed with the optimizer's environment.

Built once per container by the skeleton (app.py); tests build their own with a manual clock.
Member clients come per call from `sessions`; the inventory is read only by analyze_fleet.
"""

from __future__ import annotations

from fleet_shared.function_services import FunctionServices
from handlers.spot_optimizer.environment import SpotEnvironment

FUNCTION_NAME = "spot_optimizer"


class SpotServices(FunctionServices[SpotEnvironment]):
    """The optimizer's services: environment, sessions, state table, alerts and clock."""
