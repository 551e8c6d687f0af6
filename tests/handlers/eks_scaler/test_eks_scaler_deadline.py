"""The scaler's scheduled run against its 120 s timeout when STS hangs: every member session
starts with AssumeRole.

Time is simulated (tests/handlers/deadlines.py): a hung attempt spends its client's read timeout
of the invocation's time, botocore's waits between attempts spend theirs, and once the time is up
the invocation ends as Lambda ends it, from wherever it is."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.endpoint
import pytest
from scaler_helpers import sizes

from catalog.functions import FUNCTIONS_BY_NAME
from fleet_shared.sessions import HUB_CALL_SECONDS
from handlers.eks_scaler import app
from handlers.eks_scaler.exceptions import ScheduledRunUnfinishedError
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.conftest import FakeLambdaContext
from tests.handlers.deadlines import HungOperation, LambdaTime

TIMEOUT_SECONDS = FUNCTIONS_BY_NAME["eks_scaler"].timeout_seconds
SCALE_DOWN = json.loads(
    (Path(__file__).parents[3] / "events/eks_scaler/scale_down_schedule.json").read_text()
)


def test_a_scheduled_run_through_a_hung_sts_fails_in_time_and_its_retry_scales_once(
    services: ScalerServices, member_eks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN STS does not answer AssumeRole, and the scheduled scale-down of the cluster's two
    # node groups with the function's whole timeout
    app.FUNCTION.use_services(services)
    time = LambdaTime(TIMEOUT_SECONDS)
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=time.spend))
    sessions = services.sessions
    hub = sessions.session(sessions.hub_account_id, sessions.home_region)
    fault = HungOperation(time)
    hub.events.register_first("before-parameter-build.sts.AssumeRole", fault.note_config)
    hub.events.register_first("before-send.sts.AssumeRole", fault.hang)
    # WHEN the schedule invokes the scaler
    with pytest.raises(ScheduledRunUnfinishedError) as raised:
        app.lambda_handler(SCALE_DOWN, time.context())
    # THEN each node group's AssumeRole was given up after its bounded attempts, and the run
    # failed in time naming the account, so the schedule retries it (Lambda did not end it)
    assert fault.attempts == 4
    assert time.spent <= 2 * HUB_CALL_SECONDS
    assert [item["status"] for item in raised.value.unfinished] == ["error", "error"]
    assert "cannot access account" in str(raised.value)
    # WHEN STS answers again and the schedule retries the run
    sessions.hub_client("sts").meta.events.unregister("before-send.sts.AssumeRole", fault.hang)
    retried = app.lambda_handler(SCALE_DOWN, FakeLambdaContext())
    # THEN the retry scaled both node groups down
    assert [item["status"] for item in retried["results"]] == ["scaling_initiated"] * 2
    assert sizes(member_eks, "system")["desired_size"] == 1
    assert sizes(member_eks, "batch-spot")["desired_size"] == 0
