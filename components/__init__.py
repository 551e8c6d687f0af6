"""The Pulumi program's components.

The fleet inventory is defined once, by the pure models of the shared layer
(`fleet_shared.inventory`, no boto3). They are imported under their Lambda name `fleet_shared`, so
`handlers/` is put on the import path here, as it is under /opt/python in Lambda.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SHARED_LAYER_ROOT = str(Path(__file__).resolve().parent.parent / "handlers")
if _SHARED_LAYER_ROOT not in sys.path:
    sys.path.append(_SHARED_LAYER_ROOT)
