"""The hypothesis profiles of the property tests.

`lambda-fleet` (the default): the same examples on every run and machine (`derandomize`, no
example database), no per-example deadline (two cores shared with other processes make timings
noise), and few enough examples that `tests/property` stays a few seconds of the suite. A failure
prints the blob that replays it with `@reproduce_failure`.

`lambda-fleet-search` (`LAMBDA_FLEET_HYPOTHESIS=search`): fifty times the examples, for a hunt
after a change to the code under test; still derandomized, so what it finds, it finds again.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "lambda-fleet",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=100,
    suppress_health_check=(HealthCheck.too_slow,),
)
settings.register_profile(
    "lambda-fleet-search", settings.get_profile("lambda-fleet"), max_examples=5000
)
settings.load_profile(
    "lambda-fleet-search"
    if os.environ.get("LAMBDA_FLEET_HYPOTHESIS") == "search"
    else "lambda-fleet"
)
