"""What every test process shares.

- How the test files are shared between pytest-xdist's two workers (pyproject's addopts:
  `-n 2 --dist loadfile`): the files of `FIRST`, each a long test, are started before all
  others. xdist hands out files with the most tests first, so a one-test file would start last
  and leave the other worker idle for the whole of its run.
- One botocore loader for every botocore session of the process, as a function's container has
  (`fleet_shared.sessions`). moto replaces boto3's default session in every test, and each new
  session parsed again every service model it touched (EC2's alone takes 0.3 s): more than half
  of the set-up time of a handler test.
- OpenBLAS on one thread, as the program deploys the functions with numpy
  (`components/function_wiring.py`): set before numpy is imported.
- No test leaves a moto mock running: moto wipes its accounts only when its last mock stops, so
  one left running made every later test of the process see the earlier tests' resources.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cache
from typing import Any

import botocore.loaders
import botocore.session
import pytest
from moto.core.models import MockAWS

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

FIRST = (
    "tests/tools/test_demo_day.py",
    "tests/handlers/anomaly_detector/test_open_series_index.py",
    "tests/handlers/backup_scheduler/test_backup_day_record_size.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # noqa: PLC0415 - only under xdist

    class LongFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


@cache
def _process_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    return botocore.loaders.create_loader(search_path_string)


botocore.session.create_loader = _process_loader  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def moto_mocks_end_with_their_test() -> Iterator[None]:
    """Fails a test that left more moto mocks running than it found (a module's own mock, started
    before the test, is allowed)."""
    running_before = MockAWS._nested_count
    yield
    left_running = MockAWS._nested_count - running_before
    if left_running > 0:
        pytest.fail(f"the test left {left_running} moto mock(s) running", pytrace=False)
