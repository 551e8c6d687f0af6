"""Every `"*"` resource and every owner condition of the fleet's policies agrees with the Service
Authorization Reference's rows for its actions (`service_authorization_reference.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.functions import FUNCTIONS
from catalog.model import ResourceRef
from components.function_wiring import NO_RESOURCE_LEVEL_ACTIONS as HUB_STAR_ACTIONS
from components.member_permissions import ACTION_SCOPES
from components.member_permissions import NO_RESOURCE_LEVEL_ACTIONS as MEMBER_STAR_ACTIONS
from fleetctl.mocked_program import REPO_ROOT

REFERENCE: dict[str, dict[str, list[str]]] = json.loads(
    (Path(__file__).parent / "service_authorization_reference.json").read_text()
)["actions"]

# Optional resource types that a `"*"` grant leaves unnamed because no call of the fleet names
# one: Cost Explorer's billing view (the calls send no `BillingViewArn`).
UNNAMED_OPTIONAL_TYPES = {"billingview"}


def _row(action: str) -> dict[str, list[str]]:
    assert action in REFERENCE, (
        f"{action}: add its row of the Service Authorization Reference to "
        "tests/infra/service_authorization_reference.json"
    )
    return REFERENCE[action]


def test_every_action_granted_on_star_has_no_resource_type_the_fleet_could_name():
    for action in sorted(HUB_STAR_ACTIONS | MEMBER_STAR_ACTIONS):
        # GIVEN an action a hub or member role is granted on "*"
        # WHEN the reference's resource types for it are read
        types = _row(action)["resource_types"]
        # THEN there are none, or only an optional billing view the fleet never names
        assert set(types) <= UNNAMED_OPTIONAL_TYPES, (action, types)


def test_no_handler_names_a_billing_view():
    # GIVEN the handlers' source WHEN it is searched for the parameter naming a billing view
    sources = sorted((REPO_ROOT / "handlers").rglob("*.py"))
    assert sources
    # THEN none sends it, so the Cost Explorer calls granted on "*" name no billing view
    for source in sources:
        assert "BillingViewArn" not in source.read_text(), source


def test_every_owner_condition_key_is_listed_for_each_action_of_its_scope():
    owned = {action: scope for action, scope in ACTION_SCOPES.items() if scope.owner_account_key}
    assert owned
    for action, scope in sorted(owned.items()):
        # GIVEN a member action whose accountless ARN is held to the member by an owner key
        # THEN the reference lists that key for the action (IAM would otherwise never match it)
        assert scope.owner_account_key in _row(action)["condition_keys"], action


def test_conditions_of_star_statements_use_keys_the_reference_lists_for_their_actions():
    conditioned = 0
    for spec in FUNCTIONS:
        for statement in spec.permissions:
            if ResourceRef.ANY not in statement.resources:
                continue
            # GIVEN a hub statement on "*" WHEN it has conditions
            for condition in statement.conditions:
                conditioned += 1
                # THEN each key is one the reference lists for every action of the statement
                for action in statement.actions:
                    assert condition.key in _row(action)["condition_keys"], (spec.name, action)
    assert conditioned


def _listed_form(key: str) -> str:
    """How the reference lists a condition key: a tag key's as `<prefix>/${TagKey}`."""
    prefix, _, tag_key = key.partition("/")
    return f"{prefix}/${{TagKey}}" if tag_key else key


def test_member_conditions_use_keys_the_reference_lists_for_their_action():
    conditioned = 0
    for spec in FUNCTIONS:
        for action in sorted(spec.member_conditions):
            # GIVEN a member action held by conditions (a deletion, a tagging), every one of them:
            # an action without its row here went unchecked (the CreateTags conditions did)
            for conditions in spec.member_condition_sets(action):
                for condition in conditions:
                    conditioned += 1
                    # THEN each key is one the reference lists for it (IAM never matches another:
                    # backup_scheduler's `aws:ResourceTag/lambda-fleet:stack` on DeleteSnapshot)
                    listed = _row(action)["condition_keys"]
                    assert _listed_form(condition.key) in listed, (spec.name, action)
    assert conditioned


def test_dynamodb_backups_are_held_as_far_as_the_reference_allows():
    # GIVEN backup_scheduler's DynamoDB backup actions and their rows of the reference
    create, delete = _row("dynamodb:CreateBackup"), _row("dynamodb:DeleteBackup")
    # THEN a backup is made only of a table carrying the backup tag, a key listed for the action
    created_on = ACTION_SCOPES["dynamodb:CreateBackup"].tag_required_on
    assert created_on is not None
    assert _listed_form(f"aws:ResourceTag/{created_on[1]}") in create["condition_keys"]
    # AND a deletion, on a backup, a type listed with no condition key, has none to be held by
    assert delete == {"condition_keys": [], "resource_types": ["backup*"]}
    assert ACTION_SCOPES["dynamodb:DeleteBackup"].tag_required_on is None
