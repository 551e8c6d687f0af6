"""Twenty-five broken stack files, as a platform engineer would write them, and the one line each
prints. The files are YAML text read as the Pulumi CLI reads them (`StackFileLoader`), so YAML's
own readings (`1.30` is 1.3, an unquoted account id is a number) reach the settings loader as
they would from a real file."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from components import stack_config
from components.exceptions import StackSettingsError
from components.naming import (
    EKS_CLUSTER_SUFFIX,
    EKS_SERVICE_ROLE_SUFFIX,
    NODE_ROLE_SUFFIX,
    created_cluster_component_name,
    created_cluster_name_problem,
)
from components.schedule_payloads import skipped_run_day
from components.settings import load_settings, settings_document
from fleetctl.exceptions import PlanError, ProgramFailedError
from fleetctl.local_world import stack_settings
from fleetctl.mocked_program import REPO_ROOT, StackFileLoader, read_stack_file, run_program

VALID_STACK = """
config:
  lambda-fleet:hub:
    account_id: "111111111111"
    name: platform-hub
    deploy_role_arn: arn:aws:iam::111111111111:role/lambda-fleet-deploy
    region: ap-south-1
  lambda-fleet:members:
    - account_id: "222222222222"
      name: dev-workloads
      deploy_role_arn: arn:aws:iam::222222222222:role/lambda-fleet-deploy
      regions: [ap-south-1]
      network:
        stack_reference: acme/network/dev-{region}
      clusters:
        - name: dev-apps
          kubernetes_version: "1.33"
          endpoint_public_access_cidrs: ["203.0.113.0/24"]
          node_groups:
            - name: system
              capacity_type: ON_DEMAND
              instance_types: [m7g.large]
              min_size: 1
              desired_size: 2
              max_size: 4
          schedule:
            scale_up_time: "08:00"
            off_hours_desired: {system: 1}
  lambda-fleet:dry_run: true
  lambda-fleet:managed_layers:
    powertools:
      ap-south-1: arn:aws:lambda:ap-south-1:017000801446:layer:Powertools:27
    aws_sdk_pandas:
      ap-south-1: arn:aws:lambda:ap-south-1:336392948345:layer:Pandas:16
"""

CLUSTER = "members[0].clusters[0]"
GROUP = f"{CLUSTER}.node_groups[0]"

# (id, text in VALID_STACK, its replacement, the exact line printed)
BROKEN_STACK_FILES = [
    (
        "top-level-typo",
        "lambda-fleet:dry_run: true",
        "lambda-fleet:dryrun: true",
        "dryrun: unknown setting 'dryrun'; did you mean 'dry_run'?",
    ),
    (
        "singular-alerts",
        "  lambda-fleet:dry_run: true",
        "  lambda-fleet:dry_run: true\n  lambda-fleet:alert: {emails: [ops@example.com]}",
        "alert: unknown setting 'alert'; did you mean 'alerts'?",
    ),
    (
        "misspelt-required-top-level-key",
        "lambda-fleet:hub:",
        "lambda-fleet:hubs:",
        "hubs: unknown setting 'hubs'; did you mean 'hub'?",
    ),
    (
        "misspelt-required-node-group-key",
        "              max_size: 4",
        "              maxsize: 4",
        f"{GROUP}.maxsize: unknown setting 'maxsize'; did you mean 'max_size'?",
    ),
    (
        "misspelt-network-key",
        "stack_reference: acme",
        "stack_refrence: acme",
        "members[0].network.stack_refrence: unknown setting 'stack_refrence'; "
        "did you mean 'stack_reference'?",
    ),
    (
        "key-unlike-any-setting",
        "  lambda-fleet:dry_run: true",
        "  lambda-fleet:dry_run: true\n  lambda-fleet:colour: blue",
        "colour: unknown setting 'colour'; known: alerts, bytecode, calendar, cost_report, "
        "dry_run, functions, hub, managed_layers, members, schedule_time_zone, tags, tracing",
    ),
    (
        "unquoted-account-id",
        'account_id: "222222222222"',
        "account_id: 222222222222",
        "members[0].account_id: expected a 12-digit account id as text, got the number "
        '222222222222; quote it in YAML: "222222222222"',
    ),
    (
        "unquoted-account-id-read-as-octal",
        'account_id: "222222222222"',
        "account_id: 001234567012",
        "members[0].account_id: expected a 12-digit account id as text, got the number "
        '175304202; quote it in YAML: "000175304202", or "001234567012" if it was written with '
        "a leading 0 (YAML reads 0 and digits 0-7 as an octal number)",
    ),
    (
        "unquoted-time",
        'scale_up_time: "08:00"',
        "scale_up_time: 800",
        f"{CLUSTER}.schedule.scale_up_time: expected HH:MM as text, got the number 800; write "
        'it like "08:00"',
    ),
    (
        "unquoted-version",
        'kubernetes_version: "1.33"',
        "kubernetes_version: 1.30",
        f"{CLUSTER}.kubernetes_version: expected a version as text, got the number 1.3 "
        '(YAML reads 1.30 as 1.3); quote it in YAML: "1.30"',
    ),
    (
        "size-not-a-number",
        "min_size: 1",
        "min_size: one",
        f"{GROUP}.min_size: Input should be a valid integer, unable to parse string as an "
        "integer, got 'one'",
    ),
    (
        "flag-not-a-boolean",
        "lambda-fleet:dry_run: true",
        "lambda-fleet:dry_run: maybe",
        "dry_run: expected true or false, got 'maybe'",
    ),
    (
        "long-value-is-cut",
        "region: ap-south-1",
        "region: asia-pacific-south-one-the-mumbai-region-of-aws",
        "hub.region: 'asia-pacific-south-one-the-mumbai-re... is not valid here: expected an "
        "AWS region such as ap-south-1",
    ),
    (
        "world-in-two-halves",
        '["203.0.113.0/24"]',
        '["0.0.0.0/1", "128.0.0.0/1"]',
        f"{CLUSTER}.endpoint_public_access_cidrs: together these CIDRs open the API endpoint to "
        "4,294,967,296 addresses, more than a /8; list the networks that need access",
    ),
    (
        "two-slash-eights",
        '["203.0.113.0/24"]',
        '["10.0.0.0/8", "11.0.0.0/8"]',
        f"{CLUSTER}.endpoint_public_access_cidrs: together these CIDRs open the API endpoint to "
        "33,554,432 addresses, more than a /8; list the networks that need access",
    ),
    (
        "empty-schedule",
        '            scale_up_time: "08:00"\n            off_hours_desired: {system: 1}',
        "            {}",
        f"{CLUSTER}.schedule.off_hours_desired: a schedule must name at least one node group "
        "and its size after the scale-down (leave `schedule` out for no schedule)",
    ),
    (
        "off-hours-below-min-size",
        "off_hours_desired: {system: 1}",
        "off_hours_desired: {system: 0}",
        f"{CLUSTER}.schedule.off_hours_desired.system: off-hours size 0 is outside "
        "[min_size, max_size] = [1, 4] of node group 'system'",
    ),
    (
        "off-hours-above-max-size",
        "off_hours_desired: {system: 1}",
        "off_hours_desired: {system: 9}",
        f"{CLUSTER}.schedule.off_hours_desired.system: off-hours size 9 is outside "
        "[min_size, max_size] = [1, 4] of node group 'system'",
    ),
    (
        "capacity-type-not-known",
        "capacity_type: ON_DEMAND",
        "capacity_type: RESERVED",
        f"{GROUP}.capacity_type: Input should be 'ON_DEMAND' or 'SPOT', got 'RESERVED'",
    ),
    (
        "cluster-name-twice-in-one-account",
        "      clusters:\n",
        "      clusters:\n"
        "        - name: dev-apps\n"
        '          kubernetes_version: "1.33"\n'
        "          node_groups:\n"
        "            - {name: system, capacity_type: ON_DEMAND, instance_types: [m7g.large], "
        "min_size: 1, desired_size: 1, max_size: 2}\n",
        "members[0].clusters: duplicate cluster name 'dev-apps'",
    ),
    (
        "duplicate-day",
        'scale_up_time: "08:00"',
        'scale_up_time: "08:00"\n            days: [MON, TUE, MON]',
        f"{CLUSTER}.schedule.days: duplicate day 'MON'",
    ),
    (
        "instance-size-misspelt",
        "instance_types: [m7g.large]",
        "instance_types: [m7g.lrge]",
        f"{GROUP}.instance_types[0]: 'm7g.lrge' is not an EC2 instance type: its size 'lrge' is "
        "not nano, micro, small, medium, large, xlarge, <n>xlarge, metal or metal-<n>xl",
    ),
    (
        "floor-above-the-daytime-size",
        "max_size: 4\n",
        "max_size: 4\n              floor: 3\n",
        f"{GROUP}.desired_size: desired_size 2 is below floor 3: the scaler never goes below the "
        "floor",
    ),
    (
        "off-hours-below-the-default-floor",
        "min_size: 1\n              desired_size: 2\n              max_size: 4\n"
        '          schedule:\n            scale_up_time: "08:00"\n'
        "            off_hours_desired: {system: 1}",
        "min_size: 0\n              desired_size: 2\n              max_size: 4\n"
        '          schedule:\n            scale_up_time: "08:00"\n'
        "            off_hours_desired: {system: 0}",
        f"{CLUSTER}.schedule.off_hours_desired.system: off-hours size 0 of node group 'system' is "
        "below its floor 1 (the ON_DEMAND default; set floor to change it): the scaler never "
        "goes below the floor",
    ),
    (
        "time-zone-not-known",
        'scale_up_time: "08:00"',
        'scale_up_time: "08:00"\n            time_zone: India/Mumbai',
        f"{CLUSTER}.schedule.time_zone: unknown time zone 'India/Mumbai' (use an IANA name such "
        "as Asia/Kolkata)",
    ),
]


def _broken(old: str, new: str) -> dict:
    assert old in VALID_STACK
    config = yaml.load(VALID_STACK.replace(old, new, 1), Loader=StackFileLoader)["config"]
    return settings_document(config)


def test_the_valid_stack_file_loads() -> None:
    # GIVEN the stack file every broken case starts from WHEN loaded THEN it is valid
    settings = load_settings("broken", settings_document(yaml.safe_load(VALID_STACK)["config"]))
    assert settings.members[0].clusters[0].schedule is not None


def test_off_written_unquoted_is_read_as_the_pulumi_cli_reads_it(tmp_path: Path) -> None:
    # GIVEN a stack file with `tracing: off` and `bytecode: off` unquoted, which the Pulumi
    # CLI's YAML 1.2 reads as text and YAML 1.1 (PyYAML's) as false
    text = VALID_STACK.replace(
        "lambda-fleet:dry_run: true",
        "lambda-fleet:dry_run: true\n  lambda-fleet:tracing: off\n  lambda-fleet:bytecode: off",
    )
    path = tmp_path / "Pulumi.offline.yaml"
    path.write_text(text)
    # WHEN the local tools read and load it
    settings = load_settings("offline", settings_document(read_stack_file(path)))
    # THEN both are the mode "off", as under `pulumi up`
    assert (settings.tracing, settings.bytecode) == ("off", "off")


def test_times_written_unquoted_are_read_as_the_pulumi_cli_reads_them(tmp_path: Path) -> None:
    # GIVEN a schedule with `8:00` and `18:00` unquoted, which the Pulumi CLI's YAML 1.2 reads as
    # text and YAML 1.1 (PyYAML's) as the base-60 numbers 480 and 1080
    text = VALID_STACK.replace('scale_up_time: "08:00"', "scale_up_time: 8:00").replace(
        "off_hours_desired:", "scale_down_time: 18:00\n            off_hours_desired:"
    )
    path = tmp_path / "Pulumi.offline.yaml"
    path.write_text(text)
    # WHEN the local tools read and load it
    settings = load_settings("offline", settings_document(read_stack_file(path)))
    # THEN they are 08:00 and 18:00, as under `pulumi up`
    schedule = settings.members[0].clusters[0].schedule
    assert schedule is not None
    assert (schedule.scale_up_time, schedule.scale_down_time) == ("08:00", "18:00")


def test_there_are_twenty_five_broken_stack_files() -> None:
    assert len(BROKEN_STACK_FILES) == 25


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [case[1:] for case in BROKEN_STACK_FILES],
    ids=[case[0] for case in BROKEN_STACK_FILES],
)
def test_broken_stack_file_prints_one_exact_line(old: str, new: str, line: str) -> None:
    # GIVEN a stack file with one mistake WHEN its settings are loaded
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", _broken(old, new))
    # THEN the one line names the file, the field and what to do
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


def test_program_refuses_a_misspelt_top_level_key_before_registering(project_with_stack) -> None:
    # GIVEN a stack file whose `dry_run` is spelt `dryrun`, read by the real program
    config = yaml.safe_load(
        VALID_STACK.replace("lambda-fleet:dry_run: true", "lambda-fleet:dryrun: true")
    )["config"]
    project = project_with_stack("broken", config)
    # WHEN the program runs THEN it stops at the key, with nothing registered
    with pytest.raises(ProgramFailedError) as raised:
        run_program("broken", project)
    assert "dryrun: unknown setting 'dryrun'; did you mean 'dry_run'?" in str(raised.value)
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize(
    "namespace", ["lambda_fleet", "lambdafleet", "lamda-fleet", "lambda", "fleet"]
)
def test_program_refuses_a_setting_in_a_misspelt_namespace_before_registering(
    project_with_stack, namespace: str
) -> None:
    """GIVEN a stack file whose `lambda-fleet:dry_run: true` has its namespace misspelt or cut
    short (`lambda:`, `fleet:`), which would leave dry_run off without a word
    WHEN the real program runs
    THEN it stops at that key, naming the namespace it resembles, with nothing registered"""
    config = yaml.safe_load(
        VALID_STACK.replace("lambda-fleet:dry_run: true", f"{namespace}:dry_run: true")
    )["config"]
    project = project_with_stack("broken", config)
    with pytest.raises(ProgramFailedError) as raised:
        run_program("broken", project)
    assert (
        f"Pulumi.broken.yaml: {namespace}:dry_run: unknown namespace {namespace!r}; "
        "did you mean 'lambda-fleet:dry_run'?"
    ) in str(raised.value)
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize("setting", ["dry_run", "members", "schedule_time_zone"])
def test_program_refuses_a_setting_of_its_own_in_pulumis_namespace_before_registering(
    project_with_stack, setting: str
) -> None:
    """GIVEN a stack file with one of the fleet's settings written in Pulumi's own namespace
    (`pulumi:dry_run: true`), which nothing reads: Pulumi has no such setting
    WHEN the real program runs
    THEN it stops at that key, naming the fleet's key, with nothing registered"""
    config = yaml.safe_load(VALID_STACK)["config"]
    config[f"pulumi:{setting}"] = config.pop(f"lambda-fleet:{setting}", True)
    project = project_with_stack("broken", config)
    with pytest.raises(ProgramFailedError) as raised:
        run_program("broken", project)
    assert (
        f"Pulumi.broken.yaml: pulumi:{setting}: Pulumi has no setting {setting!r}; "
        f"did you mean 'lambda-fleet:{setting}'?"
    ) in str(raised.value)
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize(
    ("stack", "replaced", "expected"),
    [
        (
            "broken",
            "lambda-fleet:dry_run: true",
            "Pulumi.broken.yaml: lamda-fleet:dry_run: unknown namespace 'lamda-fleet'",
        ),
        ("Prod_EU", "", "Pulumi.Prod_EU.yaml: stack name: the stack's name goes into S3 bucket"),
    ],
)
def test_the_local_tools_refuse_the_stack_files_the_program_refuses(
    project_with_stack, stack: str, replaced: str, expected: str
) -> None:
    """GIVEN a stack file with a misspelt namespace, and a stack whose name cannot go into a
    bucket name
    WHEN `fleetctl demo` or `invoke` reads it
    THEN it stops with the program's message, not with a demo of settings the program refuses"""
    text = VALID_STACK.replace(replaced, "lamda-fleet:dry_run: true") if replaced else VALID_STACK
    project = project_with_stack(stack, yaml.safe_load(text)["config"])
    with pytest.raises(PlanError, match=f"^{re.escape(expected)}"):
        stack_settings(stack, project)


@pytest.mark.parametrize(
    ("stack", "problem"),
    [
        (
            "Prod_EU",
            "the stack's name goes into S3 bucket names: use lower-case letters, digits and "
            "dashes, starting with a letter",
        ),
        (
            "payments-production-europe",
            "the stack's name is too long: the bucket "
            "lf-payments-production-europe-111111111111-ap-south-1-access-logs would have 65 "
            "characters, S3 allows 63",
        ),
    ],
    ids=["capitals-and-underscore", "too-long-for-a-bucket-name"],
)
def test_program_refuses_a_stack_name_that_cannot_name_its_buckets_before_registering(
    project_with_stack, stack: str, problem: str
) -> None:
    """GIVEN the valid stack file under a stack name Pulumi accepts but S3 bucket names do not
    WHEN the real program runs
    THEN it stops, naming the stack and why, with nothing registered (instead of failing at the
    buckets after other resources were created)"""
    project = project_with_stack(stack, yaml.safe_load(VALID_STACK)["config"])
    with pytest.raises(ProgramFailedError) as raised:
        run_program(stack, project)
    assert f"Pulumi.{stack}.yaml: stack name: {problem}" in str(raised.value)
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


def test_other_namespaces_of_a_stack_file_are_left_to_their_owners(project_with_stack) -> None:
    """GIVEN the valid stack file with keys of Pulumi's and the providers' namespaces
    WHEN the real program runs
    THEN it does not take them for misspellings of its own"""
    config = yaml.safe_load(VALID_STACK)["config"]
    config["pulumi:disable-default-providers"] = ["*"]
    # Pulumi's stack tags share their name with the fleet's `tags`.
    config["pulumi:tags"] = {"team": "platform"}
    config["aws:skipMetadataApiCheck"] = False
    config["eks:region"] = "ap-south-1"
    run = run_program("valid", project_with_stack("valid", config))
    assert run.of_type("lambda-fleet:fleet:Fleet")


POLICY = "functions.cleanup_manager.policy"

# (id, the `lambda-fleet:functions` value added to VALID_STACK, the exact line printed)
BROKEN_CLEANUP_POLICIES = [
    (
        "unknown-mode",
        "{cleanup_manager: {policy: {mode: purge}}}",
        f"{POLICY}.mode: Input should be 'notify' or 'delete', got 'purge'",
    ),
    (
        "delete-without-resources",
        "{cleanup_manager: {policy: {mode: delete}}}",
        f"{POLICY}: mode delete needs `resources`, the kinds it may delete (snapshots, volumes, "
        "lambda_versions)",
    ),
    (
        "singular-resource-kind",
        "{cleanup_manager: {policy: {resources: [snapshot]}}}",
        f"{POLICY}.resources: unknown resource kind 'snapshot'; did you mean 'snapshots'?",
    ),
    (
        "duplicate-resource-kind",
        "{cleanup_manager: {policy: {resources: [volumes, volumes]}}}",
        f"{POLICY}.resources: duplicate resource kind 'volumes'",
    ),
    (
        "misspelt-policy-key",
        "{cleanup_manager: {policy: {notice_day: 3}}}",
        f"{POLICY}.notice_day: unknown setting 'notice_day'; did you mean 'notice_days'?",
    ),
    (
        "age-written-as-a-flag",
        "{cleanup_manager: {policy: {snapshot_max_age_days: true}}}",
        f"{POLICY}.snapshot_max_age_days: expected a number, got True (bool)",
    ),
    (
        "zero-notice",
        "{cleanup_manager: {policy: {notice_days: 0}}}",
        f"{POLICY}.notice_days: Input should be greater than 0, got 0",
    ),
    (
        "notice-past-the-calendar",
        "{cleanup_manager: {policy: {notice_days: 3000000}}}",
        f"{POLICY}.notice_days: Input should be less than or equal to 36500, got 3000000",
    ),
    (
        "tag-value-not-text",
        "{cleanup_manager: {policy: {require_tags: {team: 7}}}}",
        f"{POLICY}.require_tags.team: expected text, got 7 (int); quote it in YAML",
    ),
    (
        "misspelt-policy",
        "{cleanup_manager: {polcy: {mode: notify}}}",
        "functions.cleanup_manager.polcy: unknown setting 'polcy'; did you mean 'policy'?",
    ),
    (
        "policy-on-another-function",
        "{backup_scheduler: {policy: {mode: notify}}}",
        "functions.backup_scheduler.policy: only cleanup_manager takes a policy, "
        "backup_scheduler has none",
    ),
    (
        "snapshot-age-without-snapshots",
        "{cleanup_manager: {policy: {resources: [volumes], snapshot_max_age_days: 90}}}",
        f"{POLICY}.snapshot_max_age_days: only the cleaning of snapshots reads "
        "snapshot_max_age_days, and resources lists volumes: add snapshots to resources, or "
        "leave snapshot_max_age_days out",
    ),
    (
        "volume-age-without-volumes",
        "{cleanup_manager: {policy: {resources: [snapshots], volume_min_age_days: 14}}}",
        f"{POLICY}.volume_min_age_days: only the cleaning of volumes reads volume_min_age_days, "
        "and resources lists snapshots: add volumes to resources, or leave volume_min_age_days "
        "out",
    ),
    (
        "versions-kept-without-lambda-versions",
        "{cleanup_manager: {policy: {resources: [snapshots, volumes], keep_lambda_versions: 5}}}",
        f"{POLICY}.keep_lambda_versions: only the cleaning of lambda_versions reads "
        "keep_lambda_versions, and resources lists snapshots, volumes: add lambda_versions to "
        "resources, or leave keep_lambda_versions out",
    ),
]


def _with_functions(functions: str) -> dict:
    return _broken(
        "  lambda-fleet:dry_run: true",
        f"  lambda-fleet:dry_run: true\n  lambda-fleet:functions: {functions}",
    )


@pytest.mark.parametrize(
    ("functions", "line"),
    [case[1:] for case in BROKEN_CLEANUP_POLICIES],
    ids=[case[0] for case in BROKEN_CLEANUP_POLICIES],
)
def test_broken_cleanup_policy_prints_one_exact_line_naming_the_field(
    functions: str, line: str
) -> None:
    # GIVEN a stack file whose cleanup policy has one mistake WHEN its settings are loaded
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", _with_functions(functions))
    # THEN the one line names the policy field and what is wrong with it
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


def test_a_policy_key_of_a_listed_kind_is_accepted_beside_kinds_it_does_not_apply_to() -> None:
    # GIVEN a policy listing snapshots and lambda_versions with a keep tag and both of their keys
    functions = (
        "{cleanup_manager: {policy: {resources: [snapshots, lambda_versions], keep_tag: retain, "
        "snapshot_max_age_days: 60, keep_lambda_versions: 5}}}"
    )
    # WHEN its settings are loaded
    policy = load_settings("broken", _with_functions(functions)).cleanup_policy()
    # THEN every key is taken as written: each applies to a kind the policy cleans
    assert (policy.keep_tag, policy.snapshot_max_age_days, policy.keep_lambda_versions) == (
        "retain",
        60,
        5,
    )


def test_a_stack_without_a_cleanup_policy_only_notifies_about_every_kind() -> None:
    # GIVEN the valid stack file, which writes no policy WHEN loaded
    settings = load_settings("broken", settings_document(yaml.safe_load(VALID_STACK)["config"]))
    # THEN its cleanup policy names every kind and never deletes
    policy = settings.cleanup_policy()
    assert (policy.mode, policy.deletes) == ("notify", False)
    assert policy.resources == ["snapshots", "volumes", "lambda_versions"]


def test_stack_file_reads_as_yaml_reads_it(tmp_path) -> None:
    # GIVEN the valid stack file, with YAML's own readings (`8:00`, unquoted numbers)
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(VALID_STACK)
    # WHEN the plan reads it (with libyaml's loader where PyYAML has it)
    config = read_stack_file(path)
    # THEN it reads exactly what the pure-Python safe loader reads
    assert config == yaml.safe_load(VALID_STACK)["config"]


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "min_size: 1",
            "min_size: 010",
            f"{CLUSTER}.node_groups[0].min_size: 010 has a leading 0, which YAML reads as the "
            'octal number 8 (so would `pulumi up`); write 10 for the number, or "010" in '
            "quotes for the text",
        ),
        (
            "off_hours_desired: {system: 1}",
            "off_hours_desired: {system: 09}",
            f"{CLUSTER}.schedule.off_hours_desired.system: 09 has a leading 0, which YAML reads "
            'as the number 9.0 (so would `pulumi up`); write 9 for the number, or "09" in quotes '
            "for the text",
        ),
    ],
    ids=["octal-size", "leading-zero-size-read-as-a-float"],
)
def test_a_number_written_with_a_leading_zero_is_refused_by_the_local_tools_naming_the_field(
    tmp_path: Path, old: str, new: str, line: str
) -> None:
    # GIVEN a stack file with a size written with a leading 0, which YAML reads as another
    # number (the octal 010 is 8) and hands `pulumi up` as that number alone
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(VALID_STACK.replace(old, new, 1))
    # WHEN the local tools read it
    with pytest.raises(PlanError) as raised:
        read_stack_file(path)
    # THEN one line names the file and the field, and says what YAML read and what to write
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


def test_an_account_id_written_with_a_leading_zero_is_left_to_the_settings_own_message(
    tmp_path: Path,
) -> None:
    # GIVEN a member's account id unquoted with a leading 0 (YAML's octal reading of it)
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(VALID_STACK.replace('account_id: "222222222222"', "account_id: 001234567012"))
    # WHEN the local tools read it and load the settings
    config = read_stack_file(path)
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", settings_document(config))
    # THEN the settings' message quotes the id as YAML read it and as it was written
    assert 'or "001234567012" if it was written with a leading 0' in str(raised.value)


LATIN_1_STACK = VALID_STACK.replace("ap-south-1", "ap-south-1  # café", 1).encode("latin-1")


@pytest.mark.parametrize(
    ("encoded", "line"),
    [
        (LATIN_1_STACK, f"byte {LATIN_1_STACK.index(0xE9)} is 0xe9"),
        (VALID_STACK.encode("utf-16"), "byte 0 is 0xff"),
    ],
    ids=["latin-1", "utf-16"],
)
def test_a_stack_file_that_is_not_utf8_is_one_line_naming_the_file_and_the_byte(
    tmp_path: Path, encoded: bytes, line: str
) -> None:
    # GIVEN a stack file saved in another encoding than the UTF-8 the Pulumi CLI reads (an
    # editor's Latin-1, a PowerShell redirection's UTF-16)
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_bytes(encoded)
    # WHEN the local tools read it
    with pytest.raises(PlanError) as raised:
        read_stack_file(path)
    # THEN one line names the file and the first byte that is not UTF-8, not a traceback
    assert str(raised.value) == f"cannot read stack file Pulumi.broken.yaml: not UTF-8 text: {line}"


def test_a_stack_file_that_cannot_be_read_is_one_line_naming_it(tmp_path: Path) -> None:
    # GIVEN a directory where the stack file should be
    (tmp_path / "Pulumi.broken.yaml").mkdir()
    # WHEN the local tools read it
    with pytest.raises(PlanError) as raised:
        read_stack_file(tmp_path / "Pulumi.broken.yaml")
    # THEN one line names the file and why, not a traceback
    assert str(raised.value) == "cannot read stack file Pulumi.broken.yaml: Is a directory"


def test_stack_file_that_is_not_yaml_names_the_file_and_quotes_the_line(tmp_path) -> None:
    # GIVEN a stack file indented with a tab, which YAML refuses
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(VALID_STACK.replace("    region: ap-south-1", "\tregion: ap-south-1", 1))
    # WHEN the plan reads it
    with pytest.raises(PlanError) as raised:
        read_stack_file(path)
    # THEN the message names the file, the line and shows the offending text
    message = str(raised.value)
    assert message.startswith("Pulumi.broken.yaml is not valid YAML: ")
    assert "line 7, column 1:" in message
    assert "\tregion: ap-south-1" in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("1" * 5000, "a number of more than 4,300 digits", id="a-5000-digit-number"),
        pytest.param("[" * 100 + "]" * 100, "values nested more than 64 levels deep", id="deep"),
        pytest.param("&loop [*loop]", "values nested more than 64 levels deep", id="a-self-alias"),
    ],
)
def test_a_stack_value_python_cannot_hold_is_one_line_naming_the_file(
    tmp_path, value: str, problem: str
) -> None:
    # GIVEN a stack file with a value Python cannot read as written (too many digits for an
    # int, or nested deeper than the program can hand over as JSON, a list holding itself)
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(VALID_STACK.replace("config:\n", f"config:\n  lambda-fleet:odd: {value}\n", 1))
    # WHEN the plan reads it
    with pytest.raises(PlanError) as raised:
        read_stack_file(path)
    # THEN one line names the file and what is wrong
    assert str(raised.value) == f"Pulumi.broken.yaml: {problem}"


def test_the_program_keeps_as_text_a_config_value_python_cannot_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN config values as the Pulumi CLI hands them over, JSON text with a number of 5,000
    # digits, and nested deeper than the interpreter's recursion limit
    too_long, too_deep = "1" * 5000, "[" * 100_000 + "]" * 100_000
    monkeypatch.setattr(
        stack_config,
        "_configured_values",
        lambda: {"lambda-fleet:tags": too_long, "lambda-fleet:members": too_deep},
    )
    # WHEN the program reads its settings document
    document = stack_config.read_settings_document()
    # THEN each is kept as the text it is, for validation to name its field, not a traceback
    assert document == {"tags": too_long, "members": too_deep}


def test_program_refuses_account_and_cluster_names_too_long_for_the_clusters_roles(
    project_with_stack,
) -> None:
    """GIVEN a member and a created cluster whose names, each valid, make pulumi-eks's cluster
    service role `fleet-<account>-<cluster>-cluster-eksRole-role` too long for the AWS provider's
    name and random suffix (64 characters), which the provider refuses only at preview
    WHEN the real program runs offline
    THEN it stops at the cluster's name with one line saying by how much, nothing registered"""
    text = VALID_STACK.replace("name: dev-workloads", "name: shared-services-platform").replace(
        "name: dev-apps", "name: tooling-apps"
    )
    project = project_with_stack("broken", yaml.safe_load(text)["config"])
    with pytest.raises(ProgramFailedError) as raised:
        run_program("broken", project)
    assert str(raised.value) == (
        "Pulumi.broken.yaml: members[0].clusters[0].name: account 'shared-services-platform' and "
        "cluster 'tooling-apps' are too long together: the cluster's IAM role "
        "fleet-shared-services-platform-tooling-apps-cluster-eksRole-role would have 72 "
        "characters with the AWS provider's random suffix, IAM allows 64; shorten the two names "
        "by 8 characters together"
    )
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


def test_the_longest_names_accepted_fit_the_roles_the_program_creates(project_with_stack) -> None:
    """GIVEN a member and a created cluster whose names are together as long as accepted
    WHEN the real program runs offline
    THEN it plans, and the cluster's node role and pulumi-eks cluster resource carry the logical
    names the check measured, so the check follows the program's naming"""
    text = VALID_STACK.replace("name: dev-workloads", "name: shared-services").replace(
        "name: dev-apps", "name: tooling-apps2"
    )
    config = yaml.safe_load(text)["config"]
    run = run_program("valid", project_with_stack("valid", config))
    component = created_cluster_component_name("shared-services", "tooling-apps2")
    assert created_cluster_name_problem("shared-services", "tooling-apps2") is None
    assert len(f"{component}{EKS_CLUSTER_SUFFIX}{EKS_SERVICE_ROLE_SUFFIX}") == 56
    assert [resource.name for resource in run.of_type("eks:index:Cluster")] == [
        f"{component}{EKS_CLUSTER_SUFFIX}"
    ]
    assert f"{component}{NODE_ROLE_SUFFIX}" in [
        resource.name for resource in run.of_type("aws:iam/role:Role")
    ]


@pytest.mark.parametrize("extra", [0, 1], ids=["at-the-readmes-limit", "one-past-it"])
def test_a_created_clusters_names_are_refused_exactly_past_the_readmes_length(
    tmp_path: Path, extra: int
) -> None:
    """GIVEN the README's limit on `<account name>-<cluster name>` of a created cluster, and a
    stack file whose two names are together that long, or one character longer
    WHEN the local tools read the stack as the program does
    THEN the first is accepted and the second refused naming the cluster's name"""
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    found = re.search(r"for a created cluster, at most (\d+) characters \(its IAM roles", readme)
    assert found, "the README no longer limits a created cluster's names"
    cluster = "c" * (int(found[1]) - len("shared-services-") + extra)
    text = VALID_STACK.replace("name: dev-workloads", "name: shared-services").replace(
        "name: dev-apps", f"name: {cluster}"
    )
    (tmp_path / "Pulumi.names.yaml").write_text(text)
    if not extra:
        assert stack_settings("names", tmp_path).members[0].clusters[0].name == cluster
        return
    with pytest.raises(
        PlanError, match=r"^Pulumi\.names\.yaml: members\[0\]\.clusters\[0\]\.name: "
    ):
        stack_settings("names", tmp_path)


def _stack_file_without_the_namespace(tmp_path: Path, line: str) -> Path:
    """VALID_STACK with its `lambda-fleet:dry_run: true` line replaced by `line`."""
    (tmp_path / "Pulumi.bare.yaml").write_text(
        VALID_STACK.replace("  lambda-fleet:dry_run: true", f"  {line}")
    )
    return tmp_path


def test_a_key_without_a_namespace_is_the_projects_as_the_pulumi_cli_reads_it(
    tmp_path: Path,
) -> None:
    """GIVEN a stack file with `dry_run: true` written without `lambda-fleet:`, which the Pulumi
    CLI reads as `lambda-fleet:dry_run`
    WHEN the local tools read its settings
    THEN dry_run is on, as under `pulumi up` (not silently off)"""
    project = _stack_file_without_the_namespace(tmp_path, "dry_run: true")
    assert stack_settings("bare", project).dry_run is True


def test_a_misspelt_key_without_a_namespace_is_refused_as_pulumi_up_refuses_it(
    tmp_path: Path,
) -> None:
    """GIVEN a stack file with `dryrun: true` written without a namespace
    WHEN the local tools read its settings
    THEN they stop at the key, as the program does under `pulumi up`"""
    project = _stack_file_without_the_namespace(tmp_path, "dryrun: true")
    with pytest.raises(PlanError) as raised:
        stack_settings("bare", project)
    assert str(raised.value) == (
        "Pulumi.bare.yaml: dryrun: unknown setting 'dryrun'; did you mean 'dry_run'?"
    )


def test_a_key_written_with_and_without_its_namespace_is_refused(tmp_path: Path) -> None:
    """GIVEN a stack file setting both `lambda-fleet:dry_run` and `dry_run`, of which the Pulumi
    CLI keeps whichever it reads last
    WHEN the plan reads it
    THEN it stops, naming the key and both spellings"""
    project = _stack_file_without_the_namespace(
        tmp_path, "lambda-fleet:dry_run: true\n  dry_run: false"
    )
    with pytest.raises(PlanError) as raised:
        read_stack_file(project / "Pulumi.bare.yaml")
    assert str(raised.value) == (
        "Pulumi.bare.yaml: lambda-fleet:dry_run: set twice, as 'lambda-fleet:dry_run' and "
        "'dry_run' (a key without a namespace is the project's); keep one"
    )


@pytest.mark.parametrize(
    ("tags", "line"),
    [
        (
            '{team: "platform\\e[31m"}',
            "tags.team: tag value 'platform\\x1b[31m' holds '\\x1b', which AWS refuses in tags: "
            "use letters, digits, spaces and _.:/=+-@",
        ),
        (
            "{owner: 'ops, sre'}",
            "tags.owner: tag value 'ops, sre' holds ',', which AWS refuses in tags: use letters, "
            "digits, spaces and _.:/=+-@",
        ),
        (
            '{"cost#center": platform}',
            "tags.cost#center: tag key 'cost#center' holds '#', which AWS refuses in tags: use "
            "letters, digits, spaces and _.:/=+-@",
        ),
    ],
    ids=["escape-in-value", "comma-in-value", "hash-in-key"],
)
def test_a_tag_with_a_character_aws_refuses_is_refused_naming_the_tag(tags: str, line: str) -> None:
    """GIVEN stack tags holding a character IAM refuses in tags (the stack's tags go on every
    resource, roles included), which passed the plan and failed `pulumi up` at the first role
    WHEN the settings are loaded
    THEN one line names the tag and the character, with the escape shown, not sent raw"""
    with pytest.raises(StackSettingsError) as raised:
        load_settings(
            "broken",
            _broken(
                "  lambda-fleet:dry_run: true",
                f"  lambda-fleet:dry_run: true\n  lambda-fleet:tags: {tags}",
            ),
        )
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


def test_tags_in_any_script_with_spaces_and_the_allowed_punctuation_load() -> None:
    # GIVEN tags with accented letters, spaces and every punctuation mark IAM takes
    document = _broken(
        "  lambda-fleet:dry_run: true",
        "  lambda-fleet:dry_run: true\n  lambda-fleet:tags: {équipe: 'plate forme_.:/=+-@'}",
    )
    # WHEN loaded THEN they are kept as written
    assert load_settings("valid", document).tags == {"équipe": "plate forme_.:/=+-@"}


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "min_size: 1",
            "min_size: true",
            f"{GROUP}.min_size: expected a number, got True (bool)",
        ),
        (
            "off_hours_desired: {system: 1}",
            "off_hours_desired: {system: true}",
            f"{CLUSTER}.schedule.off_hours_desired.system: expected a number, got True (bool)",
        ),
        (
            "          schedule:\n",
            "          scaling: {mode: predictive, max_step: true}\n          schedule:\n",
            f"{CLUSTER}.scaling.max_step: expected a number, got True (bool)",
        ),
    ],
    ids=["size", "off-hours-size", "max-step"],
)
def test_a_flag_written_for_a_number_is_refused_naming_the_field(
    old: str, new: str, line: str
) -> None:
    """GIVEN a stack file with `true` where a number is meant, which pydantic alone reads as 1
    WHEN the settings are loaded
    THEN one line names the field and the flag, instead of a size or step of 1"""
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", _broken(old, new))
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "lambda-fleet:dry_run: true",
            "lambda-fleet:dry_run: yes",
            "dry_run: expected true or false, got 'yes'",
        ),
        (
            "lambda-fleet:dry_run: true",
            "lambda-fleet:dry_run: 1",
            "dry_run: expected true or false, got 1",
        ),
        (
            'kubernetes_version: "1.33"',
            'kubernetes_version: "1.33"\n          existing: "on"',
            f"{CLUSTER}.existing: expected true or false, got 'on'",
        ),
        (
            "  lambda-fleet:dry_run: true",
            "  lambda-fleet:dry_run: true\n  lambda-fleet:functions: {eks_scaler: {enabled: n}}",
            "functions.eks_scaler.enabled: expected true or false, got 'n'",
        ),
        (
            "          schedule:\n",
            "          scaling: {working_hours_floor: 0}\n          schedule:\n",
            f"{CLUSTER}.scaling.working_hours_floor: expected true or false, got 0",
        ),
    ],
    ids=["yes", "one", "on-quoted", "n", "zero"],
)
def test_a_flag_written_other_than_true_or_false_is_refused_naming_the_field(
    old: str, new: str, line: str
) -> None:
    """GIVEN a stack file with `yes`, `on`, `n`, 1 or 0 where a flag is meant, which the Pulumi
    CLI's YAML 1.2 passes as text or a number and pydantic alone reads as true or false
    WHEN the settings are loaded
    THEN one line names the field, as the functions' own flags refuse anything but true and
    false: a typo as likely as intent, in `dry_run` above all"""
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", _broken(old, new))
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


def test_a_flag_written_true_or_false_in_any_case_or_quoted_loads() -> None:
    # GIVEN flags written `True`, `FALSE` (YAML 1.2 flags) and "true" quoted
    document = _broken("lambda-fleet:dry_run: true", 'lambda-fleet:dry_run: "true"')
    document["members"][0]["clusters"][0]["existing"] = "FALSE"
    document["functions"] = {"eks_scaler": {"enabled": "True"}}
    # WHEN loaded THEN each is the flag written
    settings = load_settings("valid", document)
    assert settings.dry_run is True
    assert settings.members[0].clusters[0].existing is False
    assert settings.function_enabled("eks_scaler") is True


def test_a_key_written_twice_in_one_mapping_is_refused_as_the_pulumi_cli_refuses_it(
    tmp_path: Path,
) -> None:
    """GIVEN a node group with `min_size` written twice, which PyYAML reads as the last value and
    the Pulumi CLI refuses
    WHEN the plan reads the stack file
    THEN it stops with one line naming the key and both lines, instead of planning one of them"""
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(VALID_STACK.replace("min_size: 1", "min_size: 1\n              min_size: 3"))
    with pytest.raises(PlanError) as raised:
        read_stack_file(path)
    assert str(raised.value) == (
        "Pulumi.broken.yaml: line 24: key 'min_size' is already set at line 23 of the same "
        "mapping, and the Pulumi CLI refuses a key written twice; keep one"
    )


def test_an_unquoted_account_id_with_a_leading_zero_is_read_as_the_pulumi_cli_reads_it(
    tmp_path: Path,
) -> None:
    """GIVEN a member whose account id (and its role's) is written unquoted with a leading 0 and
    an 8 or 9 in it, which the Pulumi CLI's YAML reads as the number 12345678901 (text in YAML
    1.2's core schema, which the plan followed)
    WHEN the local tools read its settings
    THEN they stop as `pulumi up` does, showing the quoted form, instead of accepting it"""
    (tmp_path / "Pulumi.broken.yaml").write_text(
        VALID_STACK.replace('account_id: "222222222222"', "account_id: 012345678901").replace(
            "arn:aws:iam::222222222222:", "arn:aws:iam::012345678901:"
        )
    )
    with pytest.raises(PlanError) as raised:
        stack_settings("broken", tmp_path)
    assert str(raised.value) == (
        "Pulumi.broken.yaml: members[0].account_id: expected a 12-digit account id as text, got "
        'the number 12345678901; quote it in YAML: "012345678901"'
    )


@pytest.mark.parametrize(
    ("scaling", "line"),
    [
        (
            "{mode: predictive, target_utilization: 0.7}",
            f"{CLUSTER}.scaling.target_utilization: target_utilization is a percentage: 0.7 "
            "means 0.7%; write 70 for 70%",
        ),
        (
            "{mode: predictive, headroom_percent: 0.1}",
            f"{CLUSTER}.scaling.headroom_percent: headroom_percent is a percentage: 0.1 means "
            "0.1%; write 10 for 10%",
        ),
    ],
    ids=["utilization", "headroom"],
)
def test_a_percentage_written_as_a_fraction_is_refused(scaling: str, line: str) -> None:
    """GIVEN predictive scaling with a percentage written as a fraction (0.7 for 70%), which
    sized every group for 0.7% use, or added 0.1% headroom, without a word
    WHEN the settings are loaded
    THEN one line names the field and the percentage meant"""
    with pytest.raises(StackSettingsError) as raised:
        load_settings(
            "broken",
            _broken(
                "          schedule:\n", f"          scaling: {scaling}\n          schedule:\n"
            ),
        )
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


def test_a_schedule_time_the_clocks_skip_on_a_schedule_day_is_refused(project_with_stack) -> None:
    """GIVEN a Sunday scale-up at 02:30 in Europe/Berlin, a time the last Sunday of March lacks
    (the clocks go from 02:00 to 03:00), on which EventBridge Scheduler skips the run and the
    cluster stays scaled down
    WHEN the real program runs offline
    THEN it stops at the time, naming the day it does not exist, with nothing registered"""
    text = VALID_STACK.replace(
        '            scale_up_time: "08:00"\n',
        '            time_zone: Europe/Berlin\n            scale_up_time: "02:30"\n'
        "            days: [SAT, SUN]\n",
    )
    project = project_with_stack("broken", yaml.safe_load(text)["config"])
    with pytest.raises(ProgramFailedError) as raised:
        run_program("broken", project)
    assert re.fullmatch(
        rf"Pulumi\.broken\.yaml: {re.escape(CLUSTER)}\.schedule\.scale_up_time: 02:30 does not "
        r"exist in Europe/Berlin on \d{4}-03-(2[5-9]|3[01]) \(Sun\), when the clocks go forward, "
        r"and EventBridge Scheduler skips a run at a time that does not exist; choose a time "
        r"outside the hour the clocks skip",
        str(raised.value),
    )
    assert [urn.split("::")[2] for urn in raised.value.registered] == ["pulumi:pulumi:Stack"]


def test_a_schedule_time_the_clocks_skip_only_on_other_days_is_accepted() -> None:
    # GIVEN 02:30 in Europe/Berlin on weekdays only (the clocks go forward on a Sunday)
    settings = load_settings(
        "valid",
        _broken(
            '            scale_up_time: "08:00"\n',
            '            time_zone: Europe/Berlin\n            scale_up_time: "02:30"\n',
        ),
    )
    schedule = settings.members[0].clusters[0].schedule
    assert schedule is not None
    # WHEN the days of the coming year are checked THEN no run of the schedule is skipped
    assert skipped_run_day("02:30", "Europe/Berlin", schedule.days, date.today()) is None


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "  lambda-fleet:dry_run: true",
            "  lambda-fleet:dry_run: true\n"
            '  lambda-fleet:alerts: {emails: ["ops\\e[2J@example.com"]}',
            "alerts.emails[0]: 'ops\\x1b[2J@example.com' holds the control character '\\x1b'",
        ),
        (
            '          endpoint_public_access_cidrs: ["203.0.113.0/24"]\n',
            '          endpoint_public_access_cidrs: ["203.0.113.0/24"]\n'
            '          health_endpoints: [{name: api, url: "https://api.example.com/\\e[31m"}]\n',
            f"{CLUSTER}.health_endpoints[0].url: 'https://api.example.com/\\x1b[31m' holds the "
            "control character '\\x1b'",
        ),
        (
            '          endpoint_public_access_cidrs: ["203.0.113.0/24"]\n',
            '          endpoint_public_access_cidrs: ["203.0.113.0/24"]\n'
            "          calendar: {maintenance_windows: [{start: '2026-01-01T00:00', "
            "end: '2026-01-01T01:00', reason: \"patch\\nday\"}]}\n",
            f"{CLUSTER}.calendar.maintenance_windows[0].reason: 'patch\\nday' holds the control "
            "character '\\n'",
        ),
    ],
    ids=["email", "health-url", "maintenance-reason"],
)
def test_a_control_character_in_an_address_url_or_reason_is_refused_escaped(
    old: str, new: str, line: str
) -> None:
    """GIVEN an alert address, a health endpoint URL or a maintenance reason holding a terminal
    escape or a line break, which AWS refused at `pulumi up` (the address) or the functions carried
    into requests, alerts and logs
    WHEN the settings are loaded
    THEN one line names the field and the character, escaped"""
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", _broken(old, new))
    assert str(raised.value) == f"Pulumi.broken.yaml: {line}"


# What the program receives under the Pulumi CLI for `holidays: [2026-01-26]` written unquoted:
# the CLI's YAML (go-yaml v3) reads a timestamp, and its config passes Go's text of it.
CLI_UNQUOTED_HOLIDAY = "2026-01-26 00:00:00 +0000 UTC"


def test_an_unquoted_holiday_is_the_same_date_under_pulumi_up_as_offline(tmp_path: Path) -> None:
    """GIVEN a holiday written unquoted, which the local tools read as a date and the program
    under the Pulumi CLI receives as Go's text of a timestamp, and refused
    WHEN both forms are loaded
    THEN both are the holiday 2026-01-26"""
    path = tmp_path / "Pulumi.valid.yaml"
    path.write_text(
        VALID_STACK.replace(
            "  lambda-fleet:dry_run: true",
            "  lambda-fleet:dry_run: true\n  lambda-fleet:calendar: {holidays: [2026-01-26]}",
        )
    )
    offline = load_settings("valid", settings_document(read_stack_file(path)))
    document = settings_document(yaml.safe_load(VALID_STACK)["config"])
    document["calendar"] = {"holidays": [CLI_UNQUOTED_HOLIDAY]}
    under_pulumi_up = load_settings("valid", document)
    assert offline.calendar.holidays == under_pulumi_up.calendar.holidays == [date(2026, 1, 26)]


@pytest.mark.parametrize(
    ("written", "field", "problem"),
    [
        (
            "{holidays: [2025-02-29]}",
            "calendar.holidays[0]",
            "'2025-02-29' is not a date of the calendar",
        ),
        (
            "{working_days: [2026-04-31]}",
            "calendar.working_days[0]",
            "'2026-04-31' is not a date of the calendar",
        ),
        (
            "{holidays: [2025-12-31 24:00:00]}",
            "calendar.holidays[0]",
            "expected a date as YYYY-MM-DD, got '2025-12-31 24:00:00'",
        ),
    ],
)
def test_an_unquoted_date_missing_from_the_calendar_is_refused_naming_the_field(
    tmp_path: Path, written: str, field: str, problem: str
) -> None:
    # GIVEN a stack file whose calendar holds, unquoted, a date that is not one of the calendar
    # (29 February of a common year, 31 April) or a time past the day's end, which the Pulumi
    # CLI's YAML reads as text
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(
        VALID_STACK.replace(
            "  lambda-fleet:dry_run: true",
            f"  lambda-fleet:dry_run: true\n  lambda-fleet:calendar: {written}",
        )
    )
    # WHEN the local tools read and load it
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", settings_document(read_stack_file(path)))
    # THEN one line names the entry and the value, as under `pulumi up`
    assert str(raised.value) == f"Pulumi.broken.yaml: {field}: {problem}"


def test_a_holiday_with_a_time_of_day_is_still_refused() -> None:
    # GIVEN a holiday the CLI passes as a timestamp that is not midnight
    document = settings_document(yaml.safe_load(VALID_STACK)["config"])
    document["calendar"] = {"holidays": ["2026-01-26 10:00:00 +0000 UTC"]}
    # WHEN loaded THEN it is refused as no date, naming the entry
    with pytest.raises(StackSettingsError) as raised:
        load_settings("broken", document)
    assert str(raised.value) == (
        "Pulumi.broken.yaml: calendar.holidays[0]: expected a date as YYYY-MM-DD, got "
        "'2026-01-26 10:00:00 +0000 UTC'"
    )


def test_a_merge_key_may_be_overridden_and_reads_as_the_pulumi_cli_reads_it(
    tmp_path: Path,
) -> None:
    """GIVEN a node group merged from an anchor (`<<: *group`) and overriding one of its keys,
    in a stack file with `tracing: off` unquoted (text for the Pulumi CLI)
    WHEN the plan reads it
    THEN the override is no duplicate key, and the file is read as the CLI reads it, not by the
    YAML 1.1 loader, for which `off` is false"""
    path = tmp_path / "Pulumi.valid.yaml"
    path.write_text(
        VALID_STACK.replace(
            "            - name: system\n", "            - &group\n              name: system\n"
        )
        .replace(
            "          schedule:\n",
            "            - <<: *group\n              name: batch\n          schedule:\n",
        )
        .replace(
            "  lambda-fleet:dry_run: true",
            "  lambda-fleet:dry_run: true\n  lambda-fleet:tracing: off",
        )
    )
    settings = load_settings("valid", settings_document(read_stack_file(path)))
    assert settings.tracing == "off"
    groups = settings.members[0].clusters[0].node_groups
    assert [(group.name, group.max_size) for group in groups] == [("system", 4), ("batch", 4)]


def test_a_mapping_key_yaml_reads_as_a_number_or_flag_is_text_as_the_pulumi_cli_passes_it(
    tmp_path: Path,
) -> None:
    """GIVEN node group labels whose keys YAML reads as a number and a flag (`{1: a, true: b}`),
    which the Pulumi CLI passes to the program as the text `1` and `true`, valid label keys
    WHEN the local tools read the stack file
    THEN the labels load as under `pulumi up`, instead of being refused as no text"""
    path = tmp_path / "Pulumi.valid.yaml"
    path.write_text(
        VALID_STACK.replace(
            "              max_size: 4\n",
            "              max_size: 4\n              labels: {1: a, true: b}\n",
        )
    )
    settings = load_settings("valid", settings_document(read_stack_file(path)))
    assert settings.members[0].clusters[0].node_groups[0].labels == {"1": "a", "true": "b"}


def test_more_tags_than_fit_on_a_resource_with_the_programs_own_are_refused() -> None:
    """GIVEN 45 stack tags: with the program's 4 on every resource and a subnet's 2 of its own,
    51, past the 50 AWS takes on a resource (a preview passed them and `pulumi up` failed)
    WHEN the settings are loaded
    THEN one line names `tags`, the count and the most that fit; 44 load"""
    too_many = ", ".join(f"t{index}: v" for index in range(45))
    with pytest.raises(StackSettingsError) as raised:
        load_settings(
            "broken",
            _broken(
                "  lambda-fleet:dry_run: true",
                f"  lambda-fleet:dry_run: true\n  lambda-fleet:tags: {{{too_many}}}",
            ),
        )
    assert str(raised.value) == (
        "Pulumi.broken.yaml: tags: 45 tags, but at most 44 fit: AWS takes 50 on a resource, and "
        "the program adds 4 to every one (project, stack, account, managed-by) and 2 more to some"
    )
    fitting = ", ".join(f"t{index}: v" for index in range(44))
    document = _broken(
        "  lambda-fleet:dry_run: true",
        f"  lambda-fleet:dry_run: true\n  lambda-fleet:tags: {{{fitting}}}",
    )
    assert len(load_settings("valid", document).tags) == 44
