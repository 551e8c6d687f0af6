"""The compliance checks, one module per area; importing a module registers its declarations.

`load_checks()` imports every module of this package, as Cloud Custodian's `load_resources`
imports its resource modules: the registry never imports a check, so the dependency runs one way
(check modules -> registry). A new area is a new module here; a test fails if it is left out.
"""

from __future__ import annotations

import importlib

CHECK_MODULES: tuple[str, ...] = ("compute", "containers", "identity", "messaging", "storage")
"""Every check module of this package, in registration order."""


def load_checks() -> None:
    """Import every check module, registering its sources and checks; later calls find them
    imported already and do nothing."""
    for name in CHECK_MODULES:
        importlib.import_module(f"{__name__}.{name}")
