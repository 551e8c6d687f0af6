"""Holds against moto with a manual clock: a hold freezes the sizes of a cluster or of some node
groups until it ends or is released, each skipped change says why, `analyze` lists it, and a bad
hold is refused naming the field."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from scaler_helpers import CLUSTER, MEMBER_ACCOUNT_ID, REGION, Scaler, event, sizes

from fleet_shared.clock import ManualClock
from fleet_shared.node_group_holds import HOLD_NAME, cluster_key
from fleet_shared.node_group_locks import node_group_key
from fleet_shared.state_table import StateTable
from handlers.eks_scaler.services import ScalerServices
from tests.handlers.faults import fail_every_attempt

CALLER = "arn:aws:iam::111111111111:user/platform-oncall"
EVENTS = Path(__file__).resolve().parents[3] / "events" / "eks_scaler"
# START_TIME is 09:00 in Asia/Kolkata; the hold lasts until that evening's 20:00.
UNTIL_EVENING = "2025-06-02T20:00:00+05:30"
EVENING_SCALE_DOWN = ({"name": "system", "desired_size": 1}, {"name": "web", "desired_size": 2})


def by_group(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["nodegroup"]: item for item in result["results"]}


def http_call(body: dict[str, Any]) -> dict[str, Any]:
    """The example HTTP API event with `body` as its JSON body."""
    request: dict[str, Any] = json.loads((EVENTS / "http_api_scale_up.json").read_text())
    request["body"] = json.dumps(body)
    return request


def test_a_cluster_hold_blocks_the_evening_scale_down_until_it_expires(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a hold on the whole cluster until 20:00, placed over HTTP by the on-call engineer
    placed = scaler(
        http_call(event("hold", until=UNTIL_EVENING, reason="release freeze", request_id="h-1"))
    )
    assert placed["statusCode"] == 200
    assert by_group(json.loads(placed["body"]))["*"]["status"] == "hold_placed"
    # WHEN the evening scale-down runs at 18:00 (12:30 UTC)
    fake_clock.advance(9 * 3600)
    held = scaler(event("scale_down", *EVENING_SCALE_DOWN, request_id="down-1"))
    # THEN nothing changes and every node group says which hold, until when and who set it
    assert sizes(member_eks, "system")["desired_size"] == 2
    assert [item["nodegroup"] for item in held["results"]] == ["system", "web"]
    for item in held["results"]:
        assert item["status"] == "held"
        assert "release freeze" in item["reason"]
        assert "2025-06-02T14:30:00Z" in item["reason"]
        assert CALLER in item["reason"]
    # WHEN the next scale-down comes after the hold's end (20:30)
    fake_clock.advance(2 * 3600)
    acted = scaler(event("scale_down", *EVENING_SCALE_DOWN, request_id="down-2"))
    # THEN it acts
    assert by_group(acted)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_release_ends_a_hold_early(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a hold on the cluster until 20:00
    scaler(event("hold", until=UNTIL_EVENING, reason="incident 42"))
    # WHEN it is released at 10:00 and a scale-down follows
    fake_clock.advance(3600)
    released = scaler(event("release"))
    result = scaler(event("scale_down", *EVENING_SCALE_DOWN))
    # THEN the release says so and the scale-down acts
    assert by_group(released)["*"]["status"] == "hold_released"
    assert by_group(released)["*"]["hold"]["released_by"] == "direct invocation"
    assert by_group(result)["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1
    # AND a second release finds nothing to release
    assert by_group(scaler(event("release")))["*"]["status"] == "no_hold"


def test_a_node_group_hold_leaves_the_other_node_groups_scaling(
    scaler: Scaler, member_eks: Any
) -> None:
    # GIVEN a hold on web only
    scaler(event("hold", {"name": "web"}, until=UNTIL_EVENING, reason="load test"))
    # WHEN the scale-down names system and web
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web is held and system scales
    assert result["web"]["status"] == "held"
    assert result["web"]["hold"]["scope"] == "nodegroup"
    assert sizes(member_eks, "web")["desired_size"] == 3
    assert result["system"]["status"] == "scaling_initiated"
    assert sizes(member_eks, "system")["desired_size"] == 1


def test_analyze_lists_the_holds_in_force(scaler: Scaler, member_eks: Any) -> None:
    # GIVEN a hold on the cluster and one on web
    scaler(event("hold", until=UNTIL_EVENING, reason="freeze"))
    scaler(event("hold", {"name": "web"}, until=UNTIL_EVENING, reason="load test"))
    # WHEN the cluster is analysed
    result = scaler(event("analyze"))
    # THEN both holds are listed with their reasons
    listed = {item["nodegroup"]: item["reason"] for item in result["holds"]}
    assert listed == {"*": "freeze", "web": "load test"}


def test_analyze_says_the_holds_are_unknown_when_the_state_table_cannot_be_read(
    scaler: Scaler, services: ScalerServices, member_eks: Any
) -> None:
    # GIVEN a hold on the cluster, and every attempt to read a hold failing to connect
    scaler(event("hold", until=UNTIL_EVENING, reason="freeze"))

    def fail_hold_reads(request: Any, **_: Any) -> None:
        if b"VALUE#hold" in (request.body or b""):
            raise EndpointConnectionError(endpoint_url=request.url)

    dynamodb = services.hub_client("dynamodb")
    dynamodb.meta.events.register_first("before-send.dynamodb.GetItem", fail_hold_reads)
    # WHEN the cluster is analysed
    result = scaler(event("analyze"))
    # THEN the analysis is still given, and it says the holds could not be read rather than
    # listing none
    assert result["results"]
    assert result["holds"] is None
    assert "Could not connect" in result["holds_unavailable"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"until": "tomorrow evening"}, "until 'tomorrow evening' is not a time with a time zone"),
        (
            {"until": "2025-06-02T20:00:00"},
            "until '2025-06-02T20:00:00' is not a time with a time zone",
        ),
        ({"reason": None}, "reason None is not a string"),
        ({"scope": "everything"}, "scope 'everything' is not a hold's scope"),
        ({"frozen": True}, "unknown field 'frozen'"),
    ],
    ids=["until-no-time", "until-no-zone", "no-reason", "scope-unknown", "field-unknown"],
)
def test_an_unreadable_hold_fails_its_node_group_alone_until_released_and_is_never_no_hold(
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    change: dict[str, Any],
    problem: str,
) -> None:
    # GIVEN a hold on web that a hand edit or corruption left with a field no hold has
    scaler(event("hold", {"name": "web"}, until=UNTIL_EVENING, reason="load test"))
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    hold = state_table.get_value(web_key, HOLD_NAME)
    assert hold is not None
    state_table.put_value(web_key, HOLD_NAME, {**hold, **change})
    # WHEN the scale-down names system and web
    result = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))
    # THEN web alone is an error naming the hold and its bad field, and keeps its size (instead
    # of a TypeError or ValueError failing the whole request); system scales
    assert result["web"]["status"] == "error"
    assert result["web"]["reason"] == f"saved value hold of {web_key}: {problem}"
    assert sizes(member_eks, "web")["desired_size"] == 3
    assert result["system"]["status"] == "scaling_initiated"
    # AND analyze says the holds are unknown rather than failing or listing none
    analysis = scaler(event("analyze"))
    assert analysis["holds"] is None
    assert problem in analysis["holds_unavailable"]
    # WHEN web's hold is released
    released = by_group(scaler(event("release", {"name": "web"})))["web"]
    # THEN the release works on it (its one way out) and says it could not be read, and the
    # next scale-down changes web
    assert released["status"] == "hold_released"
    assert released["reason"].startswith(f"the hold could not be read ({problem})")
    assert released["hold"]["released_by"] == "direct invocation"
    again = by_group(scaler(event("scale_down", {"name": "web", "desired_size": 2})))
    assert again["web"]["status"] == "scaling_initiated"
    assert scaler(event("analyze"))["holds"] == []


def test_a_repeated_hold_request_is_answered_from_its_first_run_and_another_under_its_id_refused(
    scaler: Scaler, member_eks: Any, fake_clock: ManualClock
) -> None:
    # GIVEN a hold placed over HTTP with request_id h-1
    hold = event("hold", until=UNTIL_EVENING, reason="freeze", request_id="h-1")
    first = json.loads(scaler(http_call(hold))["body"])
    # WHEN the same request comes again later
    fake_clock.advance(60)
    again = scaler(http_call(hold))
    # THEN the stored answer is returned
    assert again["statusCode"] == 200
    assert json.loads(again["body"])["repeated_request"] is True
    assert json.loads(again["body"])["results"] == first["results"]
    # WHEN a different request comes under the same id (another reason)
    other = scaler(http_call({**hold, "reason": "other"}))
    # THEN it is refused with 400 naming request_id, not answered as done, and the hold kept
    # its first reason
    assert other["statusCode"] == 400
    error = json.loads(other["body"])["error"]
    assert error.startswith("invalid event: request_id: already used")
    assert "repeated_request" not in json.loads(other["body"])
    assert scaler(event("analyze"))["holds"][0]["reason"] == "freeze"


def test_a_dry_run_hold_reports_and_writes_nothing(
    scaler: Scaler, member_eks: Any, state_table: StateTable
) -> None:
    # WHEN a hold is asked in dry run
    result = scaler(event("hold", until=UNTIL_EVENING, reason="freeze", dry_run=True))
    # THEN it reports the hold it would place, and none is stored
    assert by_group(result)["*"]["status"] == "dry_run"
    assert by_group(result)["*"]["hold"]["reason"] == "freeze"
    assert state_table.get_value(cluster_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER), HOLD_NAME) is None


def test_a_long_reason_is_cut_to_200_characters(scaler: Scaler, member_eks: Any) -> None:
    # WHEN a hold comes with a 500-character reason
    result = scaler(event("hold", until=UNTIL_EVENING, reason="x" * 500))
    # THEN the stored reason keeps the first 200
    assert len(by_group(result)["*"]["hold"]["reason"]) == 200


@pytest.mark.parametrize(
    "reason",
    [
        "freeze\x1b[2J\x1b[31m all clear",
        "freeze\nset by: arn:aws:iam::111111111111:user/someone-else",
        "<!channel> freeze\x00" + "x" * 10_000,
    ],
    ids=["terminal-escapes", "forged-line", "nul-and-10000-characters"],
)
def test_a_hold_reason_with_control_characters_is_refused_quoting_a_short_prefix(
    scaler: Scaler, member_eks: Any, state_table: StateTable, reason: str
) -> None:
    # WHEN a hold's reason carries control characters (escapes, a line break, a NUL), over HTTP
    response = scaler(http_call(event("hold", until=UNTIL_EVENING, reason=reason)))
    # THEN it is refused with 400 in one short message naming the field and quoting the start
    # of the value, and no hold is stored
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error.startswith("invalid event: reason: must not contain control characters")
    assert repr(reason)[:20] in error
    assert len(error) < 200
    assert state_table.get_value(cluster_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER), HOLD_NAME) is None


def test_a_stored_hold_reaching_beyond_14_days_holds_14_days_from_when_seen_reported_once(
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    fake_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN a hold on web whose until a hand edit made 2205 (a typo for 2025), which held web
    # until then, only a release ending it
    scaler(event("hold", {"name": "web"}, until=UNTIL_EVENING, reason="load test"))
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    hold = state_table.get_value(web_key, HOLD_NAME)
    assert hold is not None
    state_table.put_value(web_key, HOLD_NAME, {**hold, "until": "2205-06-02T14:30:00Z"})
    fourteen_days_on = "2025-06-16T03:30:00Z"
    with caplog.at_level(logging.WARNING, logger="fleet_shared.node_group_holds"):
        # WHEN the cluster is analysed
        listed = scaler(event("analyze"))["holds"]
        # THEN the hold is listed as ending 14 days from now, the longest a hold lasts, and
        # left as stored (analyze writes nothing)
        assert [(item["until"], item["until_as_stored"]) for item in listed] == [
            (fourteen_days_on, "2205-06-02T14:30:00Z")
        ]
        assert state_table.get_value(web_key, HOLD_NAME) == {
            **hold,
            "until": "2205-06-02T14:30:00Z",
        }
        # WHEN the scale-down comes, twice
        first = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))["web"]
        second = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))["web"]
    # THEN web stays held, its reason saying the end was cut; the cut hold is saved, so the
    # second run reads it as stored: reported once by the change (and once by analyze)
    for result in (first, second):
        assert result["status"] == "held"
        assert (
            f"until {fourteen_days_on} (cut from '2205-06-02T14:30:00Z', beyond the 14 days a "
            "hold may last)"
        ) in result["reason"]
    saved = state_table.get_value(web_key, HOLD_NAME)
    assert saved is not None
    assert (saved["until"], saved["until_as_stored"]) == (fourteen_days_on, "2205-06-02T14:30:00Z")
    assert len(caplog.records) == 2
    assert sizes(member_eks, "web")["desired_size"] == 3
    # WHEN the scale-down comes once those 14 days are over
    fake_clock.advance(14 * 86400 + 1)
    ended = by_group(scaler(event("scale_down", *EVENING_SCALE_DOWN)))["web"]
    # THEN web scales
    assert ended["status"] == "scaling_initiated"
    assert sizes(member_eks, "web")["desired_size"] == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"reason": "freeze"}, "until"),
        ({"until": UNTIL_EVENING}, "reason"),
        ({"until": UNTIL_EVENING, "reason": "   "}, "reason"),
        ({"until": "2025-06-02T20:00:00", "reason": "no offset"}, "until"),
        ({"until": "tonight", "reason": "not a time"}, "until"),
        ({"until": "2025-06-02T08:00:00+05:30", "reason": "in the past"}, "until"),
        ({"until": "2025-06-20T09:00:00+05:30", "reason": "beyond 14 days"}, "until"),
        ({"until": "2205-06-02T20:00:00+05:30", "reason": "a typo for 2025"}, "until"),
        ({"until": "9999-12-31T23:59:59-14:00", "reason": "past the calendar in UTC"}, "until"),
        ({"until": "0001-01-01T00:00:00+14:00", "reason": "before it in UTC"}, "until"),
    ],
)
def test_a_bad_hold_is_refused_naming_the_field_and_changes_nothing(
    scaler: Scaler, member_eks: Any, state_table: StateTable, extra: dict[str, Any], field: str
) -> None:
    # WHEN a hold misses or spoils a field, over HTTP
    response = scaler(http_call(event("hold", request_id="h-bad", **extra)))
    # THEN it is refused with 400 naming the field, and no hold is stored
    assert response["statusCode"] == 400
    assert f"invalid event: {field}:" in json.loads(response["body"])["error"]
    assert state_table.get_value(cluster_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER), HOLD_NAME) is None


@pytest.mark.parametrize(
    ("body", "field", "named"),
    [
        (event("hold", {"name": "wbe"}, until=UNTIL_EVENING, reason="freeze", request_id="h-2"),
         "nodegroups[0].name", "'wbe'"),
        ({**event("hold", until=UNTIL_EVENING, reason="freeze", request_id="h-3"),
          "cluster": "dev-aps"},
         "cluster", "'dev-aps'"),
    ],
    ids=["node-group", "cluster"],
)  # fmt: skip
def test_a_hold_on_a_mistyped_name_is_refused_rather_than_freezing_nothing(  # noqa: PLR0917
    scaler: Scaler,
    member_eks: Any,
    state_table: StateTable,
    body: dict[str, Any],
    field: str,
    named: str,
) -> None:
    # WHEN a hold names a node group or a cluster that EKS does not know (a typo), over HTTP
    response = scaler(http_call(body))
    # THEN it is refused with 400 naming the field and the name, and no hold is stored
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error.startswith(f"invalid event: {field}: ")
    assert named in error
    stored = [
        state_table.get_value(key, HOLD_NAME)
        for key in (
            cluster_key(MEMBER_ACCOUNT_ID, REGION, body["cluster"]),
            node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "wbe"),
        )
    ]
    assert stored == [None, None]


def test_a_hold_is_placed_when_eks_cannot_be_asked_and_says_its_names_were_not_checked(
    scaler: Scaler, services: ScalerServices, member_eks: Any
) -> None:
    # GIVEN EKS in the member account unreachable (every attempt to list node groups fails)
    eks = services.member_client("eks", MEMBER_ACCOUNT_ID, REGION)
    fail_every_attempt(eks, "eks", "ListNodegroups")
    # WHEN a hold on web comes
    result = scaler(event("hold", {"name": "web"}, until=UNTIL_EVENING, reason="freeze"))
    # THEN the freeze does not wait for EKS: it is placed, and says its name was not checked
    [item] = result["results"]
    assert item["status"] == "hold_placed"
    assert "not checked" in item["reason"]


def test_a_hold_the_state_table_fails_to_place_is_that_targets_error_and_the_others_are_placed(
    scaler: Scaler, services: ScalerServices, member_eks: Any, state_table: StateTable
) -> None:
    # GIVEN DynamoDB failing every attempt to save web's hold
    dynamodb = services.hub_client("dynamodb")
    fault = fail_every_attempt(dynamodb, "dynamodb", "PutItem", body_with=(b"/web", b"VALUE#hold"))
    # WHEN a hold on web and system comes
    hold = event("hold", {"name": "web"}, {"name": "system"}, until=UNTIL_EVENING, reason="x")
    result = by_group(scaler({**hold, "request_id": "h-9"}))
    # THEN web is an error naming the failure (instead of the invocation failing with no
    # answer), and system's hold is placed
    assert result["web"]["status"] == "error"
    assert result["web"]["reason"].startswith("the state table failed (")
    assert result["system"]["status"] == "hold_placed"
    # AND the request stays open: once DynamoDB answers, its retry places web's hold
    fault.healed = True
    retried = by_group(scaler({**hold, "request_id": "h-9"}))
    assert retried["web"]["status"] == "hold_placed"
    web_key = node_group_key(MEMBER_ACCOUNT_ID, REGION, CLUSTER, "web")
    assert state_table.get_value(web_key, HOLD_NAME) is not None


def test_until_is_refused_on_a_scale_down(scaler: Scaler, member_eks: Any) -> None:
    # WHEN a scale-down carries `until`
    result = scaler(event("scale_down", *EVENING_SCALE_DOWN, until=UNTIL_EVENING))
    # THEN it is refused naming the field and nothing changes
    assert result["status"] == "error"
    assert "until" in result["error"]
    assert sizes(member_eks, "system")["desired_size"] == 2
