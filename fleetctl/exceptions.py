"""Errors of the local tools; each message is meant for the person at the terminal."""

from __future__ import annotations


class FleetctlError(Exception):
    """Base of fleetctl's errors: printed as one line, exit status 2."""


class RecommendationsError(FleetctlError):
    """The optimizer's recommendations cannot be read or do not fit the stack file."""


class DemoError(FleetctlError):
    """The demo cannot run as asked (its --out directory)."""


class PlanError(FleetctlError):
    """The offline plan cannot be built (bad stack file, unknown call, missing provider)."""


class ProgramFailedError(PlanError):
    """The program itself failed; `registered` lists what it had registered before failing."""

    def __init__(self, message: str, registered: list[str]) -> None:
        self.registered = registered
        super().__init__(message)
