"""`python -m fleetctl ...`: see fleetctl.cli."""

from __future__ import annotations

import sys

from fleetctl.cli import main

sys.exit(main())
