"""Per-function switches: a function switched off in the stack file leaves nothing behind, and
the functions that would call it cope."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from catalog.functions import FUNCTIONS, FUNCTIONS_BY_NAME
from catalog.model import EventRule
from components.event_forwarding import or_alternatives
from components.exceptions import StackSettingsError
from components.member_permissions import withheld_member_actions
from components.naming import forwarding_rule_name, function_name
from components.settings import (
    BLOCKS_READ_ONLY_BY_FUNCTION,
    CLUSTER_SETTING_READERS,
    PREDICTIVE_MODE_FUNCTIONS,
    load_settings,
)
from fleet_shared.cleanup_policy import CleanupPolicy
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

STACK = "switched"


def _switched_off(name: str) -> list[str]:
    """`name` and every function that reads its output, directly or through another."""
    off = [name]
    for spec in FUNCTIONS:
        if any(producer in off for producer in spec.reads_output_of):
            off.append(spec.name)
    return off


def _run_with_switched_off(project_with_stack: Any, names: list[str]) -> ProgramRun:
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:functions"] = {name: {"enabled": False} for name in names}
    for block_name, reader in BLOCKS_READ_ONLY_BY_FUNCTION.items():
        if reader in names:
            # Nothing else reads the block: a stack that switches its reader off leaves it out.
            config.pop(f"lambda-fleet:{block_name}", None)
    if set(names) & set(PREDICTIVE_MODE_FUNCTIONS):
        # Predictive mode runs through both functions, so the stack's clusters go back to their
        # schedules (a predictive one would be refused).
        for member in config["lambda-fleet:members"]:
            for cluster in member.get("clusters", []):
                cluster.pop("scaling", None)
    for setting, readers in CLUSTER_SETTING_READERS.items():
        if set(readers) <= set(names):
            # Nothing reads the setting: a stack that switches its readers off leaves it out.
            for member in config["lambda-fleet:members"]:
                for cluster in member.get("clusters", []):
                    cluster.pop(setting, None)
    return run_program(STACK, project_with_stack(STACK, config))


def _mentions(resource: Any, text: str) -> bool:
    return text in resource.urn or text in json.dumps(resource.inputs, default=str)


def _member_actions(run: ProgramRun) -> set[str]:
    return {
        action
        for resource in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if resource.inputs.get("name") == "member-actions"
        for statement in json.loads(resource.inputs["policy"])["Statement"]
        for action in statement["Action"]
    }


def _member_forwarded_patterns(run: ProgramRun) -> list[dict[str, Any]]:
    """The patterns the members' forwarding rules match, each `$or` taken apart."""
    patterns = []
    for rule in run.of_type("aws:cloudwatch/eventRule:EventRule"):
        if rule.inputs["name"] != forwarding_rule_name(STACK):
            continue
        pattern = json.loads(rule.inputs["eventPattern"])
        patterns.extend(or_alternatives(pattern) or [pattern])
    return patterns


@pytest.mark.parametrize("name", [spec.name for spec in FUNCTIONS])
def test_switched_off_function_leaves_nothing_behind(project_with_stack, name: str) -> None:
    # GIVEN the dev stack with one function (and what reads its output) switched off
    switched_off = _switched_off(name)
    # WHEN the program runs under mocks
    run = _run_with_switched_off(project_with_stack, switched_off)
    # THEN no resource is named after it or points at it: no Lambda, role, log group, DLQ,
    # queue, alarm, schedule, rule, subscription, route, dashboard line or invoke permission
    for off in switched_off:
        short_name = off.replace("_", "-")
        physical_name = function_name(STACK, off)
        left = [r.urn for r in run.resources if _mentions(r, short_name)]
        left += [r.urn for r in run.resources if _mentions(r, physical_name)]
        assert left == [], off
    # AND members grant no action that only switched-off functions needed (nor one the stack's
    # cleanup policy never uses: it writes none, so the default, which only notifies)
    cleanup_policy = CleanupPolicy()
    kept = {
        action
        for spec in FUNCTIONS
        if spec.name not in switched_off
        for action in set(spec.member_actions) - withheld_member_actions(spec, cleanup_policy)
    }
    only_theirs = {
        action for off in switched_off for action in FUNCTIONS_BY_NAME[off].member_actions
    } - kept
    assert _member_actions(run) == kept
    assert not only_theirs & _member_actions(run)
    # AND members forward no event that only they received
    forwarded = _member_forwarded_patterns(run)
    for off in switched_off:
        for trigger in FUNCTIONS_BY_NAME[off].triggers:
            if isinstance(trigger, EventRule):
                assert trigger.pattern not in forwarded


def test_scaler_runs_without_forecasts_when_the_forecaster_is_off(project_with_stack) -> None:
    # GIVEN the dev stack with demand_forecaster switched off WHEN the program runs
    run = _run_with_switched_off(project_with_stack, ["demand_forecaster"])
    scaler = next(
        resource
        for resource in run.of_type("aws:lambda/function:Function")
        if resource.inputs["name"] == function_name(STACK, "eks_scaler")
    )
    # THEN the scaler has no FORECASTER_FUNCTION_NAME (no forecast) and may invoke nothing
    assert "FORECASTER_FUNCTION_NAME" not in scaler.inputs["environment"]["variables"]
    policy = next(
        resource
        for resource in run.of_type("aws:iam/rolePolicy:RolePolicy")
        if resource.inputs.get("role") and "eks-scaler" in resource.urn
    )
    assert "lambda:InvokeFunction" not in policy.inputs["policy"]


def test_prod_stack_deploys_no_cleanup_manager(program_runs: dict[str, ProgramRun]) -> None:
    # GIVEN Pulumi.prod.yaml, which switches cleanup_manager off WHEN its plan is read
    run = program_runs["prod"]
    # THEN nothing of the cleanup manager is in it, and members may not delete volumes
    assert [r.urn for r in run.resources if _mentions(r, "cleanup-manager")] == []
    assert "ec2:DeleteVolume" not in _member_actions(run)


def _dev_settings_with(functions: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(read_stack_file(REPO_ROOT / "Pulumi.dev.yaml"))
    document = {
        key.removeprefix("lambda-fleet:"): value
        for key, value in config.items()
        if key.startswith("lambda-fleet:")
    }
    return {**document, "functions": functions}


@pytest.mark.parametrize(
    ("functions", "line"),
    [
        (
            {"cleanup_manger": {"enabled": False}},
            "functions.cleanup_manger: unknown function 'cleanup_manger'; "
            "did you mean 'cleanup_manager'?",
        ),
        (
            {"cleanup_manager": {"enable": False}},
            "functions.cleanup_manager.enable: unknown setting 'enable'; did you mean 'enabled'?",
        ),
        (
            {"report_processor": {"enabled": False}},
            "functions.report_processor: report_generator needs report_processor (it reads what "
            "report_processor writes); switch both off or keep report_processor on",
        ),
        (
            {"report_fetcher": {"enabled": False}},
            "functions.report_fetcher: report_processor needs report_fetcher (it reads what "
            "report_fetcher writes); switch both off or keep report_fetcher on",
        ),
        (
            {"performance_analyzer": {"enabled": False}},
            "functions.performance_analyzer: scaling_optimizer needs performance_analyzer (it "
            "reads what performance_analyzer writes); switch both off or keep "
            "performance_analyzer on",
        ),
        (
            {"cleanup_manager": {"enabled": False, "policy": {"mode": "notify"}}},
            "functions.cleanup_manager.policy: cleanup_manager is switched off (enabled: false), "
            "so nothing reads its policy: leave policy out, or switch cleanup_manager on",
        ),
        (
            {"cost_analyzer": {"enabled": False, "memory_mb": 2048}},
            "functions.cost_analyzer.memory_mb: cost_analyzer is switched off (enabled: false), "
            "so nothing reads its memory_mb: leave memory_mb out, or switch cost_analyzer on",
        ),
        (
            {"change_validator": {"validation": {"bake_minutes": 30}, "enabled": False}},
            "functions.change_validator.validation: change_validator is switched off (enabled: "
            "false), so nothing reads its validation: leave validation out, or switch "
            "change_validator on",
        ),
        (
            {"notification_router": {"enabled": False}},
            "alerts.emails: only notification_router reads alerts, and "
            "functions.notification_router.enabled is false: leave alerts.emails out, or switch "
            "notification_router on",
        ),
    ],
    ids=[
        "misspelt-function",
        "misspelt-switch",
        "generator-without-processor",
        "processor-alone",
        "optimizer-without-analyzer",
        "policy-of-a-switched-off-function",
        "memory-of-a-switched-off-function",
        "validation-of-a-switched-off-function",
        "alert-channels-without-the-router",
    ],
)
def test_bad_function_switch_is_refused_in_one_line(functions: dict[str, Any], line: str) -> None:
    # GIVEN a switch naming no catalog function, leaving an enabled function without input, or
    # switching off a function whose other settings it still writes
    # WHEN the settings are loaded THEN one line names the switch and what to do
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", _dev_settings_with(functions))
    assert str(raised.value) == f"Pulumi.dev.yaml: {line}"


def test_a_cost_report_setting_is_refused_when_the_cost_analyzer_is_switched_off() -> None:
    # GIVEN the dev stack with the cost analyzer switched off and a CUR bucket still written
    document = _dev_settings_with({"cost_analyzer": {"enabled": False}})
    document["cost_report"] = {"cur_bucket": "acme-cur-exports"}
    # WHEN the settings are loaded
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one line names the setting and the switch
    assert str(raised.value) == (
        "Pulumi.dev.yaml: cost_report.cur_bucket: only cost_analyzer reads cost_report, and "
        "functions.cost_analyzer.enabled is false: leave cost_report.cur_bucket out, or switch "
        "cost_analyzer on"
    )


def test_restoring_the_scalers_changes_is_refused_when_the_scaler_is_switched_off() -> None:
    # GIVEN the dev stack with eks_scaler switched off (its clusters back on their schedules)
    # and the change validator told to restore the scaler's changes
    document = _dev_settings_with(
        {
            "eks_scaler": {"enabled": False},
            "change_validator": {"validation": {"restore_scaler_changes": True}},
        }
    )
    document["members"][0]["clusters"][0].pop("scaling")
    # WHEN the settings are loaded
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one line names the validation setting and the scaler's switch
    assert str(raised.value) == (
        "Pulumi.dev.yaml: functions.change_validator.validation.restore_scaler_changes: only "
        "changes of eks_scaler are restored, and functions.eks_scaler.enabled is false: leave "
        "restore_scaler_changes out, or switch eks_scaler on"
    )


@pytest.mark.parametrize(
    ("switched_off", "cluster_setting", "line"),
    [
        (
            ("health_monitor",),
            {},
            "members[0].clusters[0].health_endpoints: only health_monitor reads "
            "health_endpoints (the change validator measures them by the health monitor's "
            "results), and functions.health_monitor.enabled is false: leave health_endpoints "
            "out, or switch health_monitor on",
        ),
        (
            ("eks_scaler", "spot_optimizer", "scaling_optimizer"),
            {"autoscaler": "cluster-autoscaler"},
            "members[0].clusters[0].autoscaler: only eks_scaler, spot_optimizer and "
            "scaling_optimizer read autoscaler, and functions.eks_scaler.enabled, "
            "functions.spot_optimizer.enabled and functions.scaling_optimizer.enabled are "
            "false: leave autoscaler out, or switch eks_scaler on",
        ),
    ],
    ids=["endpoints-without-the-health-monitor", "autoscaler-without-the-scaler"],
)
def test_a_cluster_setting_whose_readers_are_all_switched_off_is_refused(
    switched_off: tuple[str, ...], cluster_setting: dict[str, Any], line: str
) -> None:
    # GIVEN the dev stack (its first cluster has health endpoints, back on its schedule) with
    # every function reading one of the cluster's settings switched off
    document = _dev_settings_with({name: {"enabled": False} for name in switched_off})
    cluster = document["members"][0]["clusters"][0]
    cluster.pop("scaling")
    cluster.update(cluster_setting)
    # WHEN the settings are loaded
    with pytest.raises(StackSettingsError) as raised:
        load_settings("dev", document)
    # THEN one line names the cluster's setting and the switches
    assert str(raised.value) == f"Pulumi.dev.yaml: {line}"


@pytest.mark.parametrize(
    "switched_off",
    [("eks_scaler",), ("eks_scaler", "spot_optimizer")],
    ids=["spot-optimizer-on", "scaling-optimizer-on"],
)
def test_a_declared_autoscaler_loads_while_a_function_that_reads_it_is_on(
    switched_off: tuple[str, ...],
) -> None:
    # GIVEN the dev stack with eks_scaler (and the spot optimizer) switched off, its cluster back
    # on its schedule, and Cluster Autoscaler declared on the cluster: the spot optimizer's
    # on-demand fallback reads the declaration to pass over the groups Cluster Autoscaler sizes,
    # the scaling optimizer to recommend no sizes for the cluster
    document = _dev_settings_with({name: {"enabled": False} for name in switched_off})
    cluster = document["members"][0]["clusters"][0]
    cluster.pop("scaling")
    cluster["autoscaler"] = "cluster-autoscaler"
    # WHEN the settings are loaded
    settings = load_settings("dev", document)
    # THEN the declaration is kept, and the fleet inventory the fallback reads carries it
    assert settings.members[0].clusters[0].autoscaler == "cluster-autoscaler"
    [member] = settings.inventory("dev").members
    assert [cluster.autoscaler for cluster in member.clusters] == ["cluster-autoscaler"]


def test_health_endpoints_load_with_the_health_monitor_on_and_the_change_validator_off() -> None:
    # GIVEN the dev stack with the change validator switched off: the health monitor still
    # checks the endpoints
    document = _dev_settings_with({"change_validator": {"enabled": False}})
    # WHEN the settings are loaded THEN the endpoints are kept
    settings = load_settings("dev", document)
    assert settings.members[0].clusters[0].health_endpoints


def test_a_whole_chain_may_be_switched_off_together() -> None:
    # GIVEN the report chain switched off as a whole WHEN loaded THEN it is accepted
    settings = load_settings(
        "dev",
        _dev_settings_with(
            {name: {"enabled": False} for name in ("report_processor", "report_generator")}
        ),
    )
    assert not settings.function_enabled("report_generator")
    assert settings.function_enabled("report_fetcher")
