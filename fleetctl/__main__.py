"""`python -m fleetctl ...`: see fleetctl.cli."""

import sys

from fleetctl.cli import main

sys.exit(main())
