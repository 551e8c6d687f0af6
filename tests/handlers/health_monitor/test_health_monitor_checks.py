"""health_monitor: each check against moto, in a member account reached through the member role,
and the HTTP endpoint check against real servers on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from fleet_shared.endpoint_history import HISTORY_VALUE, endpoint_history_key, read_results
from fleet_shared.exceptions import ConfigurationError
from fleet_shared.handler import Invocation
from fleet_shared.state_table import StateTable
from fleet_shared.validation_errors import ECHO_LIMIT
from handlers.health_monitor.checks import endpoints
from handlers.health_monitor.checks.base import ClusterContext, ClusterTarget
from handlers.health_monitor.probe import http_probe
from tests.handlers.deadlines import THREAD_REACHED_SECONDS
from tests.handlers.faults import InjectedFault, MalformedAnswer
from tests.handlers.local_peers import LocalPeer, PeerReply, PeerRequest, http_answer

REGION = "ap-south-1"
MEMBER = "222222222222"
CLUSTER_EVENT = {
    "action": "check_cluster",
    "account_id": MEMBER,
    "region": REGION,
    "cluster": "dev-apps",
}

Invoke = Callable[[Any], dict[str, Any]]


def checks_named(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [check for check in report["checks"] if check["name"] == name]


def only_cluster(result: dict[str, Any]) -> dict[str, Any]:
    [report] = result["clusters"]
    return report


def test_healthy_member_cluster_passes_every_check(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], alert_inbox: Any
) -> None:
    # GIVEN a healthy cluster in the member account, and an alarm in ALARM in the HUB account only
    hub_cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    hub_cloudwatch.put_metric_alarm(
        AlarmName="hub-only-critical",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    hub_cloudwatch.set_alarm_state(
        AlarmName="hub-only-critical", StateValue="ALARM", StateReason="hub"
    )
    # WHEN the cluster is checked
    result = invoke(CLUSTER_EVENT)
    report = only_cluster(result)
    # THEN every registered check ran in the member account and passed
    assert result["status"] == "healthy"
    assert report["status"] == "healthy"
    assert {check["name"] for check in report["checks"]} == {
        "cluster_status",
        "node_group",
        "capacity",
        "alarm",
        "endpoint",
    }
    assert all(check["status"] == "passed" for check in report["checks"]), report["checks"]
    assert all(check["severity"] == "info" for check in report["checks"])
    [capacity] = checks_named(report, "capacity")
    assert capacity["data"] == {"desired": 2, "ready": 2, "ratio": 1.0}
    # AND the hub's alarm was not looked at: the alarm check ran in the member account
    assert checks_named(report, "alarm")[0]["detail"] == "no alarm in ALARM"
    # AND nothing was alerted
    assert alert_inbox.receive() == []
    assert report["alerts"] == {"sent": 0, "resolved": 0, "suppressed": 0}


@pytest.mark.parametrize(
    ("status", "severity"),
    [("UPDATING", "warning"), ("FAILED", "critical"), ("DELETING", "critical")],
)
def test_cluster_not_active_fails_with_severity_of_its_status(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], status: str, severity: str
) -> None:
    # GIVEN the member's cluster in a non-ACTIVE status
    member_cluster.set_cluster_status(status)
    # WHEN checked THEN the cluster status check fails with the status's severity
    report = only_cluster(invoke(CLUSTER_EVENT))
    [check] = checks_named(report, "cluster_status")
    assert (check["status"], check["severity"]) == ("failed", severity)
    assert status in check["detail"]
    assert report["status"] == severity


def test_cluster_missing_from_eks_is_critical(
    invoke: Invoke, mocked_aws: None, inventory: dict[str, Any]
) -> None:
    # GIVEN an inventory cluster that does not exist in the member's EKS
    # WHEN checked
    report = only_cluster(invoke(CLUSTER_EVENT))
    # THEN the cluster check is critical, the node group checks (meaningless without the
    # cluster) add nothing, and the account-level checks still ran
    [check] = checks_named(report, "cluster_status")
    assert (check["status"], check["severity"]) == ("failed", "critical")
    assert "does not exist" in check["detail"]
    assert checks_named(report, "node_group") == []
    assert checks_named(report, "capacity") == []
    assert checks_named(report, "alarm")[0]["status"] == "passed"
    assert checks_named(report, "endpoint")[0]["status"] == "passed"
    assert report["status"] == "critical"


def test_degraded_node_group_with_health_issues_is_critical_and_alerted(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], alert_inbox: Any
) -> None:
    # GIVEN the node group DEGRADED with a health issue
    member_cluster.set_node_group_health(
        "DEGRADED",
        [
            {
                "code": "AsgInstanceLaunchFailures",
                "message": "Could not launch On-Demand Instances",
                "resourceIds": ["eks-system-asg"],
            }
        ],
    )
    # WHEN checked
    report = only_cluster(invoke(CLUSTER_EVENT))
    # THEN the node group check is critical and names the issue
    [check] = checks_named(report, "node_group")
    assert (check["target"], check["status"], check["severity"]) == ("system", "failed", "critical")
    assert "AsgInstanceLaunchFailures: Could not launch On-Demand Instances" in check["detail"]
    # AND a critical alert about the node group of this member cluster went to the critical topic
    [received] = alert_inbox.receive()
    assert received.topic_arn.endswith(":fleet-alerts-critical")
    assert received.alert["severity"] == "critical"
    assert received.alert["source"] == "health_monitor"
    assert received.alert["account_id"] == MEMBER
    assert received.alert["resource"] == f"{MEMBER}/{REGION}/dev-apps/node_group/system"


def test_node_group_with_issues_but_active_is_a_warning(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any]
) -> None:
    # GIVEN an ACTIVE node group that reports a health issue
    member_cluster.set_node_group_health(
        "ACTIVE", [{"code": "Ec2SubnetInvalidConfiguration", "message": "subnet full"}]
    )
    # WHEN checked THEN the node group check fails as a warning
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "node_group")
    assert (check["status"], check["severity"]) == ("failed", "warning")


def test_inventory_node_group_missing_from_the_cluster_is_critical(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    write_inventory: Callable[[dict[str, Any]], None],
) -> None:
    # GIVEN the inventory lists a node group the cluster does not have
    cluster = inventory["members"][0]["clusters"][0]
    cluster["node_groups"].append({**cluster["node_groups"][0], "name": "spot-workers"})
    cluster["schedule"]["off_hours_desired"] = {}
    write_inventory(inventory)
    # WHEN checked THEN that group is reported missing, critical; the existing one passes
    checks = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "node_group")
    by_target = {check["target"]: check for check in checks}
    assert by_target["system"]["status"] == "passed"
    assert (by_target["spot-workers"]["status"], by_target["spot-workers"]["severity"]) == (
        "failed",
        "critical",
    )


@pytest.mark.parametrize(
    ("unhealthy", "status", "severity", "ready"),
    [(0, "passed", "info", 4), (1, "failed", "warning", 3), (3, "failed", "critical", 1)],
)
def test_capacity_compares_ready_instances_with_desired(
    invoke: Invoke,
    make_member_cluster: Callable[..., Any],
    inventory: dict[str, Any],
    *,
    unhealthy: int,
    status: str,
    severity: str,
    ready: int,
) -> None:
    # GIVEN a node group of 4 desired instances, some of them marked Unhealthy
    cluster = make_member_cluster(MEMBER, desired=4)
    cluster.mark_unhealthy(unhealthy)
    # WHEN checked THEN ready/desired is judged against 0.8 (warning) and 0.5 (critical)
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "capacity")
    assert (check["status"], check["severity"]) == (status, severity)
    assert check["data"]["desired"] == 4
    assert check["data"]["ready"] == ready


def test_capacity_thresholds_come_from_the_environment(
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN 1 of 2 instances unhealthy and a critical ratio raised to 0.6
    member_cluster.mark_unhealthy(1)
    monkeypatch.setenv("HEALTH_CAPACITY_CRITICAL_RATIO", "0.6")
    # WHEN checked THEN 50% ready is now critical
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "capacity")
    assert (check["status"], check["severity"]) == ("failed", "critical")


def test_node_group_whose_auto_scaling_group_is_missing_is_a_warning(
    invoke: Invoke, member_eks: Any, inventory: dict[str, Any]
) -> None:
    # GIVEN a node group whose reported Auto Scaling group does not exist (moto never creates it)
    eks = member_eks
    eks.create_cluster(
        name="dev-apps",
        roleArn=f"arn:aws:iam::{MEMBER}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-0a"]},
    )
    eks.create_nodegroup(
        clusterName="dev-apps",
        nodegroupName="system",
        nodeRole=f"arn:aws:iam::{MEMBER}:role/node",
        subnets=["subnet-0a"],
    )
    # WHEN checked THEN the capacity check says which group it could not find
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "capacity")
    assert (check["status"], check["severity"]) == ("failed", "warning")
    assert "not found: eks-" in check["detail"]


def test_alarms_in_alarm_in_the_member_are_reported_with_severity_by_name(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], alert_inbox: Any
) -> None:
    # GIVEN member alarms: one critical by name, one plain, one OK
    critical_arn = member_cluster.put_alarm("dev-apps-api-critical", "ALARM", "5xx above 5%")
    member_cluster.put_alarm("dev-apps-cpu-high", "ALARM", "CPU above 80%")
    member_cluster.put_alarm("dev-apps-memory-high", "OK", "fine")
    # WHEN checked
    report = only_cluster(invoke(CLUSTER_EVENT))
    # THEN only the alarms in ALARM are reported, critical by name, the other a warning
    checks = {check["target"]: check for check in checks_named(report, "alarm")}
    assert set(checks) == {"dev-apps-api-critical", "dev-apps-cpu-high"}
    assert checks["dev-apps-api-critical"]["severity"] == "critical"
    assert "5xx above 5%" in checks["dev-apps-api-critical"]["detail"]
    assert checks["dev-apps-cpu-high"]["severity"] == "warning"
    # AND the alert for the critical alarm is about the alarm's ARN in the member account
    alerts = {received.alert["resource"]: received.alert for received in alert_inbox.receive()}
    assert alerts[critical_arn]["severity"] == "critical"
    assert f":{MEMBER}:alarm:" in critical_arn


def test_healthy_endpoint_passes_with_its_status_and_latency(
    invoke: Invoke, member_cluster: Any, inventory: dict[str, Any], endpoint_server: Any
) -> None:
    # GIVEN the inventory endpoint pointing at a healthy local server
    # WHEN checked THEN it passes with status 200 and a measured latency, and it was really called
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    assert check["status"] == "passed"
    assert check["data"]["status_code"] == 200
    assert 0 < check["data"]["latency_ms"] < 1000
    assert endpoint_server.hits["/healthy"] == 1


def test_slow_endpoint_is_judged_by_the_latency_thresholds(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN an endpoint answering after 150 ms, a warning level of 50 ms and critical of 100 s
    use_endpoints([{"name": "slow", "url": endpoint_server.url("/slow"), "timeout_seconds": 2}])
    monkeypatch.setenv("HEALTH_LATENCY_WARNING_MS", "50")
    monkeypatch.setenv("HEALTH_LATENCY_CRITICAL_MS", "100000")
    # WHEN checked THEN the check fails as a warning for its latency
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    assert (check["status"], check["severity"]) == ("failed", "warning")
    assert check["data"]["latency_ms"] >= 150
    assert "latency" in check["detail"]
    # AND with the critical level under the latency it is critical
    monkeypatch.setenv("HEALTH_LATENCY_CRITICAL_MS", "100")
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    assert check["severity"] == "critical"


def test_endpoint_answering_500_fails_and_names_the_status(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
) -> None:
    # GIVEN an endpoint answering 500 where 200 is expected
    use_endpoints([{"name": "api", "url": endpoint_server.url("/error")}])
    # WHEN checked THEN it fails as a warning naming the status (one sample: no error rate yet)
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    assert (check["status"], check["severity"]) == ("failed", "warning")
    assert "status 500, expected 200" in check["detail"]
    assert check["data"]["status_code"] == 500


@pytest.mark.parametrize(("expected", "hits_of_its_target"), [(302, 0), (200, 1)])
def test_an_endpoint_that_redirects_is_judged_by_the_redirect_only_when_one_is_expected(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    *,
    expected: int,
    hits_of_its_target: int,
) -> None:
    # GIVEN an endpoint answering 302 to /healthy, expected to answer `expected`
    use_endpoints(
        [{"name": "web", "url": endpoint_server.url("/moved"), "expected_status": expected}]
    )
    # WHEN checked
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    # THEN it passes with that status: a redirect expected is the answer, not followed (else no
    # endpoint could be expected to redirect), and one not expected is followed to its target
    assert (check["status"], check["data"]["status_code"]) == ("passed", expected)
    assert endpoint_server.hits.get("/healthy", 0) == hits_of_its_target


def test_endpoint_timeout_is_a_failed_request(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
) -> None:
    # GIVEN an endpoint slower (150 ms) than its timeout (50 ms)
    use_endpoints([{"name": "slow", "url": endpoint_server.url("/slow"), "timeout_seconds": 0.05}])
    # WHEN checked THEN the request failed with no status code
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    assert check["status"] == "failed"
    assert check["data"]["status_code"] is None
    assert "request failed" in check["detail"]


@pytest.fixture
def endpoint_answering_a_long_non_http_line() -> Iterator[str]:
    """A URL on 127.0.0.1 whose server answers every request with one 60,000-byte line that is
    not an HTTP status line (a service of another protocol behind the endpoint's port), with a
    terminal escape and a next-line control character (U+0085, a line break to `splitlines`)."""
    with LocalPeer(b"XXXX\x1b[31mred\x85next" + b"X" * 60_000 + b"\r\n\r\n") as peer:
        yield peer.url("/health")


def test_an_endpoint_answering_a_long_line_that_is_not_http_fails_naming_its_start_escaped(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_answering_a_long_non_http_line: str,
    alert_inbox: Any,
) -> None:
    # GIVEN an endpoint whose server answers a 60,000-character line that is not HTTP
    use_endpoints([{"name": "api", "url": endpoint_answering_a_long_non_http_line}])
    # WHEN checked
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    # THEN the request failed naming what was wrong and the start of what the server sent, not
    # all of it, its control characters escaped, in the report and in the alert
    assert (check["status"], check["severity"]) == ("failed", "warning")
    assert check["detail"].startswith("request failed: BadStatusLine: XXXX\\x1b[31mred\\x85nextX")
    assert check["detail"].isprintable()
    assert len(check["detail"]) <= len("request failed: ") + ECHO_LIMIT
    [received] = alert_inbox.receive()
    assert received.alert["detail"] == check["detail"]


TRICKLED_BYTES = 600


@pytest.fixture
def trickling_endpoint() -> Iterator[str]:
    """A URL on 127.0.0.1 that answers 200 at once, then sends its 600-byte body one byte every
    100 ms (60 s in all, cut short at teardown): every read is quick, the answer is not."""
    start = http_answer(200, {"content-length": str(TRICKLED_BYTES)})
    with LocalPeer(start, [b"x"] * TRICKLED_BYTES, pause_seconds=0.1) as peer:
        yield peer.url("/trickle")


def test_an_endpoint_that_answers_too_slowly_in_all_is_a_timeout(trickling_endpoint: str) -> None:
    # GIVEN an endpoint whose every byte comes within the timeout, but not its whole answer
    # WHEN it is probed with a timeout of 0.5 s
    outcome = http_probe(trickling_endpoint, 0.5)
    # THEN the probe gives up at its timeout, not after the endpoint's 60 s, when it would have
    # had the 200 (the cluster's other checks and the other clusters are not held up by one
    # endpoint), as a request that failed
    assert outcome.status_code is None
    assert outcome.error is not None and "TimeoutError" in outcome.error


@pytest.fixture
def endpoint_trickling_its_headers() -> Iterator[LocalPeer]:
    """A peer on 127.0.0.1 that answers a status line, then one header line every 100 ms for
    20 s; its `cut_off` is set once the client has shut or closed its connection."""
    with LocalPeer(b"HTTP/1.1 200 OK\r\n", [b"X-Trickle: 1\r\n"] * 200, pause_seconds=0.1) as peer:
        yield peer


def test_a_probe_that_times_out_on_trickling_headers_lets_go_of_the_connection(
    endpoint_trickling_its_headers: LocalPeer,
) -> None:
    # GIVEN an endpoint that sends its headers a line every 100 ms, for 20 s
    # WHEN it is probed with a timeout of 0.5 s
    outcome = http_probe(endpoint_trickling_its_headers.url("/health"), 0.5)
    # THEN the probe is a timeout, and it lets go of the connection then: its thread and socket
    # do not stay reading for as long as the endpoint trickles, one more every run
    assert outcome.error is not None and "TimeoutError" in outcome.error
    assert endpoint_trickling_its_headers.cut_off.wait(THREAD_REACHED_SECONDS)


MALFORMED_REDIRECTS = {
    "http://[::1": r"ValueError: Invalid IPv6 URL",
    # Each Python words it its own way: `UnicodeError: label empty or too long` (3.12, Lambda's),
    # `UnicodeError: encoding with 'idna' codec failed (...)` (3.11), `UnicodeEncodeError:
    # 'idna' codec can't encode characters in position 0-69: label too long` (3.13).
    f"http://{'a' * 70}.example/": r"Unicode(Encode)?Error: .*label (empty or )?too long\)?",
}
"""Locations no URL parser reads (an IPv6 host never closed) or whose host name IDNA cannot
encode (a label over 63 characters), and a pattern of the error each probe names."""


@pytest.fixture(params=sorted(MALFORMED_REDIRECTS))
def endpoint_redirecting_to_a_malformed_url(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, str]]:
    """A URL on 127.0.0.1 that answers 302 with a Location of `MALFORMED_REDIRECTS`, and the
    error its probe names."""
    location = request.param
    redirect = PeerReply(http_answer(302, {"Location": location}))
    with LocalPeer.responding(lambda _request: redirect) as peer:
        yield peer.url("/health"), MALFORMED_REDIRECTS[location]


def test_an_endpoint_redirecting_to_a_malformed_url_fails_saying_so_not_as_a_timeout(
    endpoint_redirecting_to_a_malformed_url: tuple[str, str],
) -> None:
    # GIVEN an endpoint that redirects to a URL no parser reads
    # WHEN it is probed with a timeout of 2 s
    url, named = endpoint_redirecting_to_a_malformed_url
    outcome = http_probe(url, 2.0)
    # THEN the request failed naming what was wrong, the exception's own class and message, not
    # as a timeout it never was
    assert outcome.status_code is None
    assert outcome.error is not None
    assert re.fullmatch(named, outcome.error), outcome.error


@pytest.fixture
def redirecting_endpoint() -> Iterator[tuple[str, list[str]]]:
    """A URL on 127.0.0.1 answering 302 to the Location its list holds (set by the test)."""
    location: list[str] = []

    def reply(_request: PeerRequest) -> PeerReply:
        return PeerReply(http_answer(302, {"Location": location[0]}))

    with LocalPeer.responding(reply) as peer:
        yield peer.url("/health"), location


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fe80::1]/",
    ],
)
def test_an_endpoint_redirecting_to_a_link_local_address_is_not_followed_there(
    redirecting_endpoint: tuple[str, list[str]], location: str
) -> None:
    # GIVEN an endpoint that redirects to a link-local address (the instance metadata service,
    # however written)
    url, locations = redirecting_endpoint
    locations.append(location)
    # WHEN it is probed
    outcome = http_probe(url, 2.0)
    # THEN no request went there: the probe fails at once, naming why, with no status
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "link-local address" in outcome.error, outcome.error
    assert outcome.latency_ms < 1000


def test_endpoint_error_rate_over_the_window_escalates_and_clears_within_one_window(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    fake_clock: Any,
) -> None:
    # GIVEN an endpoint whose answer the test flips between runs, checked every 5 minutes
    # against the default window of 15 minutes
    use_endpoints([{"name": "api", "url": endpoint_server.url("/flaky")}])

    def run_with(status: int) -> dict[str, Any]:
        endpoint_server.routes["/flaky"] = (status, 0.0)
        fake_clock.advance(300)
        [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
        return check

    # WHEN it succeeds twice THEN it passes
    assert run_with(200)["status"] == "passed"
    assert run_with(200)["status"] == "passed"
    # WHEN it fails once (1 of the 3 results of the window = 33% >= 20%) THEN a warning
    third = run_with(500)
    assert (third["severity"], third["data"]["error_rate"]) == ("warning", 0.333)
    assert "over the last 15 minutes (3 checks)" in third["detail"]
    # WHEN it fails again (2 of 3: the first success is older than the window) THEN critical
    assert run_with(500)["severity"] == "critical"
    # WHEN it answers again THEN the failures linger only while they are within the window:
    # 2 of 3, then 1 of 3, then none
    recovered = [run_with(200) for _ in range(3)]
    assert [(check["status"], check["severity"]) for check in recovered] == [
        ("failed", "critical"),
        ("failed", "warning"),
        ("passed", "info"),
    ]
    assert [check["data"]["samples"] for check in recovered] == [3, 3, 3]


def test_endpoint_results_older_than_the_window_leave_the_error_rate(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: Any,
) -> None:
    # GIVEN a window of 30 minutes, one result needed, and an endpoint failing twice 5 minutes
    # apart, then answering again an hour later
    monkeypatch.setenv("HEALTH_ERROR_RATE_WINDOW_MINUTES", "30")
    monkeypatch.setenv("HEALTH_ERROR_RATE_MIN_SAMPLES", "1")
    use_endpoints([{"name": "api", "url": endpoint_server.url("/flaky")}])
    checks = []
    for status, minutes_later in ((500, 5), (500, 5), (200, 20), (200, 60)):
        endpoint_server.routes["/flaky"] = (status, 0.0)
        fake_clock.advance(minutes_later * 60)
        checks.append(checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")[0])
    # WHEN the failures are within the window THEN they count; once older, they are gone
    assert [check["data"]["samples"] for check in checks] == [1, 2, 3, 1]
    assert [check["data"]["error_rate"] for check in checks] == [1.0, 1.0, 0.667, 0]
    assert checks[-1]["status"] == "passed"


def test_a_run_a_few_seconds_late_does_not_change_which_runs_the_window_holds(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    fake_clock: Any,
) -> None:
    # GIVEN the default 15-minute window and a 5-minute cadence whose first run came 2 s late
    use_endpoints([{"name": "api", "url": endpoint_server.url("/healthy")}])
    checks = []
    for seconds_later in (302, 298, 300, 300, 300):
        fake_clock.advance(seconds_later)
        checks.append(checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")[0])
    # WHEN the fourth run comes exactly 15 minutes after the late one, less 2 s
    # THEN the window holds the last 3 runs, as it does for runs on the minute
    assert [check["data"]["samples"] for check in checks] == [1, 2, 3, 3, 3]


def test_endpoint_results_are_kept_past_the_window_for_the_change_validator(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    fake_clock: Any,
    state_table: StateTable,
) -> None:
    # GIVEN a 15-minute error-rate window and an endpoint probed every 5 minutes for 25 minutes
    monkeypatch.setenv("HEALTH_ERROR_RATE_WINDOW_MINUTES", "15")
    use_endpoints([{"name": "api", "url": endpoint_server.url("/healthy")}])
    checks = []
    for _ in range(6):
        fake_clock.advance(5 * 60)
        checks.append(checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")[0])
    # THEN the error rate counts only the window's probes
    assert [check["data"]["samples"] for check in checks] == [1, 2, 3, 3, 3, 3]
    # AND every probe is still stored, so a bake judged after its last probe sees all of them
    stored = state_table.get_value(
        endpoint_history_key(f"{MEMBER}/{REGION}/{CLUSTER_EVENT['cluster']}", "api"),
        HISTORY_VALUE,
    )
    assert len(read_results(stored)) == 6


@pytest.mark.parametrize("value", ["0", "1441", "fifteen"])
def test_error_rate_window_out_of_range_is_refused_naming_it(
    invoke: Invoke,
    inventory: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    alert_inbox: Any,
    value: str,
) -> None:
    # GIVEN a window that is not a whole number of minutes from 1 to 1440
    monkeypatch.setenv("HEALTH_ERROR_RATE_WINDOW_MINUTES", value)
    # WHEN the monitor runs
    with pytest.raises(ConfigurationError) as raised:
        invoke(CLUSTER_EVENT)
    # THEN the invocation fails naming the variable, and nothing was checked or alerted
    assert str(raised.value).startswith("environment variable HEALTH_ERROR_RATE_WINDOW_MINUTES: ")
    assert alert_inbox.receive() == []


def test_an_endpoint_whose_history_cannot_be_stored_is_still_judged_by_its_probe(
    invoke: Invoke,
    member_cluster: Any,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    health_services: Callable[[], Any],
) -> None:
    # GIVEN two endpoints, and the state table (or a proxy) failing the requests of the first
    # one's results only, with a server error whose message is a page over several lines
    use_endpoints(
        [
            {"name": "api", "url": endpoint_server.url("/error")},
            {"name": "web", "url": endpoint_server.url("/healthy")},
        ]
    )
    history_key = endpoint_history_key(f"{MEMBER}/{REGION}/dev-apps", "api")
    page = "<html>\nAll endpoints healthy \x1b[31m\u2028" + "x" * 5000
    fault = InjectedFault("history", body_parts=(history_key.encode(),), server_error=page)
    health_services().hub_client("dynamodb").meta.events.register_first(
        "before-send.dynamodb", fault
    )
    # WHEN checked
    checks = {c["target"]: c for c in checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")}
    # THEN each endpoint has its own result: the first judged by its probe (status 500), its
    # error rate unknown and saying why, the table's page on one line, cut, escaped
    assert fault.attempts > 1
    assert (checks["api"]["status"], checks["api"]["severity"]) == ("failed", "warning")
    assert "status 500, expected 200" in checks["api"]["detail"]
    assert checks["api"]["data"]["error_rate"] is None
    history_error = checks["api"]["data"]["history_error"]
    assert history_error.startswith("its results could not be stored: An error occurred")
    assert "<html>\\nAll endpoints healthy \\x1b[31m\\u2028xxx" in history_error
    assert history_error.isprintable()
    assert len(history_error) < 500
    # AND the second endpoint passes as usual
    assert checks["web"]["status"] == "passed"


class SecondRunBeforeHistoryWrite:
    """A `before-call` hook on the state table that, when the first run is about to write an
    endpoint's history (after reading it), lets another run of the endpoint check (a retried
    run, 200 s later) read and write that history first: two runs overlapping at the worst
    moment, in one thread, in a fixed order."""

    def __init__(self, history_key: str, second_run: Callable[[], Any]) -> None:
        self._marker = history_key.encode()
        self._second_run = second_run
        self.ran = False

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.ran or self._marker not in (params.get("body") or b""):
            return
        self.ran = True
        self._second_run()


def overlapping_second_run(
    services: Any, fake_clock: Any, endpoint_server: Any, seconds_later: int
) -> Callable[[], None]:
    """A second run of the endpoint check of `dev-apps`, `seconds_later` than the first, that
    finds `/flaky` answering again."""
    target = ClusterTarget(
        MEMBER, REGION, services.inventory().find_cluster(MEMBER, REGION, "dev-apps")
    )
    context = ClusterContext(
        target,
        client=lambda service: services.sessions.client(service, MEMBER, REGION),
        environment=services.environment,
        state=services.state,
        clock=fake_clock,
        probe=services.probe,
        deadline=Invocation.local(),
    )

    def second_run() -> None:
        endpoint_server.routes["/flaky"] = (200, 0.0)
        fake_clock.advance(seconds_later)
        [result] = endpoints.run(context)
        assert result.passed

    return second_run


def test_two_runs_writing_an_endpoints_history_at_once_keep_both_results(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    health_services: Callable[[], Any],
    fake_clock: Any,
    state_table: StateTable,
) -> None:
    # GIVEN an endpoint failing for the first run, and a second run of the endpoint check that
    # finds it answering again 200 s later and stores its result while the first run is about
    # to store its own
    use_endpoints([{"name": "api", "url": endpoint_server.url("/flaky")}])
    endpoint_server.routes["/flaky"] = (500, 0.0)
    services = health_services()
    key = endpoint_history_key(f"{MEMBER}/{REGION}/dev-apps", "api")
    overlap = SecondRunBeforeHistoryWrite(
        key, overlapping_second_run(services, fake_clock, endpoint_server, seconds_later=200)
    )
    services.hub_client("dynamodb").meta.events.register("before-call.dynamodb.PutItem", overlap)
    # WHEN the first run checks the cluster
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    # THEN the runs overlapped, and the history holds both results, the first run's failure
    # and the second run's success
    assert overlap.ran
    assert check["status"] == "failed"
    stored = read_results(state_table.get_value(key, HISTORY_VALUE))
    assert [result.ok for result in stored] == [False, True]


def test_a_retried_run_whose_result_lands_first_still_counts_once_with_the_later_outcome(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    health_services: Callable[[], Any],
    fake_clock: Any,
    state_table: StateTable,
) -> None:
    # GIVEN an endpoint failing for a run, and its retry, 60 s later (the same run: SAME_RUN),
    # finding it answering again and storing its result while the first attempt is about to
    # store its own
    use_endpoints([{"name": "api", "url": endpoint_server.url("/flaky")}])
    endpoint_server.routes["/flaky"] = (500, 0.0)
    services = health_services()
    first_probe_at = fake_clock.now()
    key = endpoint_history_key(f"{MEMBER}/{REGION}/dev-apps", "api")
    overlap = SecondRunBeforeHistoryWrite(
        key, overlapping_second_run(services, fake_clock, endpoint_server, seconds_later=60)
    )
    services.hub_client("dynamodb").meta.events.register("before-call.dynamodb.PutItem", overlap)
    # WHEN the first attempt checks the cluster
    invoke(CLUSTER_EVENT)
    # THEN the run is one result, as when the retry comes after the first attempt's write: the
    # first attempt's time with the retry's (later) outcome
    assert overlap.ran
    stored = read_results(state_table.get_value(key, HISTORY_VALUE))
    assert [(result.at, result.ok) for result in stored] == [(first_probe_at, True)]


def test_an_endpoint_whose_history_changes_under_every_write_is_still_judged_by_its_probe(
    invoke: Invoke,
    member_cluster: Any,
    *,
    use_endpoints: Callable[[list[dict[str, Any]]], None],
    endpoint_server: Any,
    health_services: Callable[[], Any],
    state_table: StateTable,
) -> None:
    # GIVEN an endpoint whose history another writer replaces just before each of this run's
    # writes lands
    use_endpoints([{"name": "api", "url": endpoint_server.url("/healthy")}])
    key = endpoint_history_key(f"{MEMBER}/{REGION}/dev-apps", "api")
    writes: list[int] = []

    def write_in_between(params: dict[str, Any], **_: Any) -> None:
        if key.encode() in (params.get("body") or b""):
            writes.append(len(writes))
            state_table.put_value(key, HISTORY_VALUE, {"results": [], "writer": len(writes)})

    health_services().hub_client("dynamodb").meta.events.register(
        "before-call.dynamodb.PutItem", write_in_between
    )
    # WHEN checked
    [check] = checks_named(only_cluster(invoke(CLUSTER_EVENT)), "endpoint")
    # THEN the run tried a bounded number of times, then judged the endpoint by its probe, its
    # error rate unknown and saying why
    assert len(writes) == endpoints.HISTORY_WRITE_ATTEMPTS
    assert check["status"] == "passed"
    assert check["data"]["error_rate"] is None
    assert "changed under each of 5 attempts" in check["data"]["history_error"]


@dataclass(frozen=True)
class PageNotItsAnswer:
    """A member call answered with a page that is not its answer (HTTP 200), and what the
    cluster's report says of the checks that need the call and of those that do not."""

    event: str
    """The botocore event the page answers (`before-send.<service>.<Operation>`)."""
    body: bytes
    url_part: str
    failed: dict[str, dict[str, str]]
    """Per check that needs the call, the fields of its one entry."""
    detail_parts: tuple[str, ...]
    """What the detail of each of those entries names: the call and what its answer lacked."""
    still_passing: tuple[str, ...] = ()
    """Checks that do not need the call, which still run and pass."""
    alarm_in_alarm: bool = False
    """A member alarm in ALARM, which the page must not hide as no alarm in ALARM."""


GATEWAY_PAGE = b"<html>gateway</html>"
LOAD_BALANCER_WITHOUT_ITS_ARN = (
    b'{"PaginationToken": "", "ResourceTagMappingList": [{"Tags": '
    b'[{"Key": "elbv2.k8s.aws/cluster", "Value": "dev-apps"}]}]}'
)
"""GetResources' own answer finding a load balancer tagged for the cluster without its ARN."""


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(
            PageNotItsAnswer(
                "before-send.eks.DescribeNodegroup",
                GATEWAY_PAGE,
                url_part="/node-groups/system",
                failed={"node_group": {"target": "system", "status": "failed"}},
                detail_parts=("DescribeNodegroup of system answered without nodegroup",),
                still_passing=("cluster_status", "alarm", "endpoint"),
            ),
            id="a-node-group-described-fails-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.eks.DescribeNodegroup",
                b'{"nodegroup": {"nodegroupName": "system", "createdAt": "not-a-date"}}',
                url_part="/node-groups/system",
                failed={"node_group": {"target": "system", "status": "failed"}},
                detail_parts=(
                    "DescribeNodegroup answered a value botocore cannot read",
                    "Invalid timestamp",
                ),
                still_passing=("cluster_status", "alarm", "endpoint"),
            ),
            id="a-node-group-described-with-a-timestamp-botocore-cannot-parse-fails-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.auto-scaling.DescribeAutoScalingGroups",
                b"<html><body>Bad gateway</body></html>",
                url_part="",
                failed={"capacity": {"status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "DescribeAutoScalingGroups answered without",
                    "Bad gateway",
                ),
                still_passing=("cluster_status", "node_group", "alarm", "endpoint"),
            ),
            id="capacity-read-with-a-well-formed-html-page-fails-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.cloudwatch.DescribeAlarms",
                GATEWAY_PAGE,
                url_part="",
                failed={"alarm": {"status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "DescribeAlarms answered without MetricAlarms",
                ),
                alarm_in_alarm=True,
            ),
            id="alarms-listed-fail-rather-than-pass",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.cloudwatch.DescribeAlarms",
                b'{"MetricAlarms": [{"StateValue": "ALARM"}], "CompositeAlarms": []}',
                url_part="",
                failed={"alarm": {"target": "dev-apps", "status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "DescribeAlarms answered without AlarmName",
                ),
                still_passing=("cluster_status", "node_group", "capacity", "endpoint"),
            ),
            id="an-alarm-listed-without-its-name-fails-the-alarm-check-alone-not-the-cluster",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.cloudwatch.DescribeAlarms",
                b'{"MetricAlarms": [{"StateValue": "ALARM", "AlarmName": "dev-apps-5xx"}]}',
                url_part="",
                failed={"alarm": {"target": "dev-apps", "status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "DescribeAlarms answered without AlarmArn",
                ),
                still_passing=("cluster_status", "node_group", "capacity", "endpoint"),
            ),
            id="an-alarm-listed-without-its-arn-fails-rather-than-alert-under-another-identity",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.cloudwatch.DescribeAlarms",
                b'{"MetricAlarms": [{"StateValue": "ALARM", "AlarmName": 7, "AlarmArn": '
                b'"arn:aws:cloudwatch:eu-west-1:111111111111:alarm:dev-apps-5xx"}]}',
                url_part="",
                failed={"alarm": {"target": "dev-apps", "status": "failed"}},
                detail_parts=("check could not run", "DescribeAlarms answered without a text"),
                still_passing=("cluster_status", "node_group", "capacity", "endpoint"),
            ),
            id="an-alarm-listed-with-a-name-that-is-no-text-fails-the-alarm-check-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.eks.DescribeCluster",
                b'{"cluster": {"name": "dev-apps", "status": "ACTIVE", '
                b'"health": {"issues": [null]}}}',
                url_part="",
                failed={"cluster_status": {"target": "dev-apps", "status": "failed"}},
                detail_parts=("check could not run", "DescribeCluster of dev-apps", "issues"),
                still_passing=("node_group", "capacity", "alarm", "endpoint"),
            ),
            id="a-cluster-health-issue-that-is-null-fails-the-cluster-status-check-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.eks.DescribeNodegroup",
                b'{"nodegroup": {"nodegroupName": "system", "status": "ACTIVE", '
                b'"health": {"issues": [{"code": "AsgInstanceLaunchFailures", '
                b'"message": "launch failed", "resourceIds": [7]}]}}}',
                url_part="/node-groups/system",
                failed={"node_group": {"target": "system", "status": "failed"}},
                detail_parts=("cannot be described", "DescribeNodegroup of system", "issues"),
                still_passing=("cluster_status", "alarm", "endpoint"),
            ),
            id="a-node-group-health-issue-naming-a-number-fails-its-node-group-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.eks.DescribeNodegroup",
                b'{"nodegroup": {"nodegroupName": "system", "status": "ACTIVE", '
                b'"resources": {"autoScalingGroups": [null]}}}',
                url_part="/node-groups/system",
                failed={"node_group": {"target": "system", "status": "failed"}},
                detail_parts=("cannot be described", "resources.autoScalingGroups"),
                still_passing=("cluster_status", "alarm", "endpoint"),
            ),
            id="a-node-group-auto-scaling-group-that-is-null-fails-its-node-group-alone",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.eks.ListNodegroups",
                GATEWAY_PAGE,
                url_part="",
                failed={
                    "node_group": {"status": "failed", "severity": "warning"},
                    "capacity": {"status": "failed", "severity": "warning"},
                },
                detail_parts=("ListNodegroups of dev-apps answered without nodegroups",),
                still_passing=("cluster_status",),
            ),
            id="node-groups-listed-fail-rather-than-read-as-none",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.auto-scaling.DescribeAutoScalingGroups",
                b"<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult/>"
                b"</DescribeAutoScalingGroupsResponse>",
                url_part="",
                failed={"capacity": {"status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "DescribeAutoScalingGroups answered without AutoScalingGroups",
                ),
            ),
            id="capacity-read-without-the-groups-list-rather-than-groups-not-found",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.resource-groups-tagging-api.GetResources",
                LOAD_BALANCER_WITHOUT_ITS_ARN,
                url_part="",
                failed={"load_balancer": {"target": "dev-apps", "status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "GetResources answered without ResourceARN",
                ),
                still_passing=("cluster_status", "node_group", "capacity", "alarm", "endpoint"),
            ),
            id="a-load-balancer-found-without-its-arn-fails-the-check-alone-not-the-cluster",
        ),
        pytest.param(
            PageNotItsAnswer(
                "before-send.auto-scaling.DescribeAutoScalingGroups",
                b"<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult>"
                b"<AutoScalingGroups><member><DesiredCapacity>2</DesiredCapacity></member>"
                b"</AutoScalingGroups></DescribeAutoScalingGroupsResult>"
                b"</DescribeAutoScalingGroupsResponse>",
                url_part="",
                failed={"capacity": {"target": "dev-apps", "status": "failed"}},
                detail_parts=(
                    "check could not run",
                    "DescribeAutoScalingGroups answered without AutoScalingGroupName",
                ),
                still_passing=("cluster_status", "node_group", "alarm", "endpoint"),
            ),
            id="capacity-read-with-a-group-without-its-name-fails-alone-not-the-cluster",
        ),
    ],
)
def test_a_member_call_answered_with_a_page_not_its_own_fails_the_checks_that_need_it(
    page: PageNotItsAnswer,
    invoke: Invoke,
    member_cluster: Any,
    inventory: dict[str, Any],
    health_services: Callable[[], Any],
) -> None:
    # GIVEN the member's cluster, one of whose calls is answered with a page that is not its
    # answer (a proxy's page, or an answer of the call's own shape holding none of its fields)
    # that botocore hands on as an answer, or with its own answer holding a value botocore's
    # parser cannot read
    if page.alarm_in_alarm:
        member_cluster.put_alarm("dev-apps-api-critical", "ALARM", "5xx above 5%")
    session = health_services().sessions.session(MEMBER, REGION)
    answer = MalformedAnswer(page.body, url_part=page.url_part)
    session.events.register_first(page.event, answer)
    # WHEN the cluster is checked
    report = only_cluster(invoke(CLUSTER_EVENT))
    # THEN the checks that need the call fail, naming the call and what its answer lacked,
    # rather than reading it as nothing to report, and the cluster's other checks still ran
    # and passed
    assert answer.answered >= 1
    for name, fields in page.failed.items():
        [check] = checks_named(report, name)
        assert {field: check[field] for field in fields} == fields, name
        for part in page.detail_parts:
            assert part in check["detail"], name
    for name in page.still_passing:
        assert [item["status"] for item in checks_named(report, name)] == ["passed"], name
