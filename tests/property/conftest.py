"""The hypothesis profile of the property tests: the same examples on every run and machine
(`derandomize`, no example database), no per-example deadline (two cores shared with other
processes make timings noise), and few enough examples that `tests/property` stays a few seconds
of the suite. A failure prints the blob that replays it with `@reproduce_failure`."""

from __future__ import annotations

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
settings.load_profile("lambda-fleet")
