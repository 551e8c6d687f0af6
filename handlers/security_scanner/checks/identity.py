"""IAM: customer-managed policies, and the inline policies of roles, users and groups, granting
`*` or `service:*` actions.

IAM is global, so its source runs once per account (the scope with `include_global`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from fleet_shared.aws_answers import answer_field
from handlers.security_scanner.checks._aws import (
    as_list,
    described,
    listed,
    policy_document,
    statements,
)
from handlers.security_scanner.registry import (
    FindingSeverity,
    Resource,
    ResourceSource,
    ScanScope,
    UnreadableListingItem,
    check,
    register_source,
)

POLICY = "AwsIamPolicy"
ROLE = "AwsIamRole"
USER = "AwsIamUser"
GROUP = "AwsIamGroup"
_INLINE_HOLDERS = {"role": ROLE, "user": USER, "group": GROUP}
"""The principals with inline policies, by the word IAM's calls name them with (ListRoles,
GetUserPolicy, ListGroupPolicies, ...), and their resource types."""
_SERVICE_WILDCARD = re.compile(r"^[A-Za-z0-9-]+:\*$")


def _collect_managed_policies(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    iam = scope.client("iam")

    def describe(policy: dict[str, Any], arn: str) -> Resource:
        default = answer_field(policy, f"ListPolicies of {arn}", "DefaultVersionId")
        version = iam.get_policy_version(PolicyArn=arn, VersionId=default)
        document = policy_document(
            answer_field(version, "GetPolicyVersion", "PolicyVersion", "Document")
        )
        return Resource(arn=arn, resource_type=POLICY, attributes={"documents": [document]})

    # Not required in IAM's model; a proxy's page is refused before botocore parses it
    # (fleet_shared.foreign_answers: no <ListPoliciesResponse>).
    yield from described(
        listed(
            iam,
            "list_policies",
            "Policies",
            always_sent=False,
            next_page_allowed=scope.next_page_allowed,
            Scope="Local",
        ),
        POLICY,
        listing_call="ListPolicies",
        arn_of=lambda policy: policy["Arn"],
        describe=describe,
    )


def _collect_inline(scope: ScanScope, kind: str) -> Iterator[Resource | UnreadableListingItem]:
    """Roles, users or groups with their inline policies (kind is `role`, `user` or `group`);
    one without any is no resource."""
    iam = scope.client("iam")
    resource_type = _INLINE_HOLDERS[kind]
    items = f"{kind.capitalize()}s"

    def describe(principal: dict[str, Any], arn: str) -> Resource | None:
        # IAM names each role, user or group it lists: one without its name is unreadable.
        name = answer_field(principal, f"List{items} of {arn}", f"{kind.capitalize()}Name")
        documents = list(_inline_documents(iam, kind, name, scope.next_page_allowed))
        if not documents:
            return None
        return Resource(arn=arn, resource_type=resource_type, attributes={"documents": documents})

    yield from described(
        listed(
            iam,
            f"list_{kind}s",
            items,
            always_sent=True,
            next_page_allowed=scope.next_page_allowed,
        ),
        resource_type,
        listing_call=f"List{items}",
        arn_of=lambda principal: principal["Arn"],
        describe=describe,
    )


def _inline_documents(
    iam: Any, kind: str, name: str, next_page_allowed: Callable[[], bool]
) -> Iterator[dict[str, Any]]:
    noun = kind.capitalize()
    key = {f"{noun}Name": name}
    getter = getattr(iam, f"get_{kind}_policy")
    names = listed(
        iam,
        f"list_{kind}_policies",
        "PolicyNames",
        always_sent=True,
        next_page_allowed=next_page_allowed,
        **key,
    )
    for policy_name in names:
        answer = getter(**key, PolicyName=policy_name)
        yield policy_document(answer_field(answer, f"Get{noun}Policy", "PolicyDocument"))


register_source(
    ResourceSource(
        resource_type=POLICY,
        global_service=True,
        api_calls=("iam:ListPolicies", "iam:GetPolicyVersion"),
        iam_actions=("iam:ListPolicies", "iam:GetPolicyVersion"),
        collect=_collect_managed_policies,
    )
)
register_source(
    ResourceSource(
        resource_type=ROLE,
        global_service=True,
        api_calls=("iam:ListRoles", "iam:ListRolePolicies", "iam:GetRolePolicy"),
        iam_actions=("iam:ListRoles", "iam:ListRolePolicies", "iam:GetRolePolicy"),
        collect=lambda scope: _collect_inline(scope, "role"),
    )
)
register_source(
    ResourceSource(
        resource_type=USER,
        global_service=True,
        api_calls=("iam:ListUsers", "iam:ListUserPolicies", "iam:GetUserPolicy"),
        iam_actions=("iam:ListUsers", "iam:ListUserPolicies", "iam:GetUserPolicy"),
        collect=lambda scope: _collect_inline(scope, "user"),
    )
)
register_source(
    ResourceSource(
        resource_type=GROUP,
        global_service=True,
        api_calls=("iam:ListGroups", "iam:ListGroupPolicies", "iam:GetGroupPolicy"),
        iam_actions=("iam:ListGroups", "iam:ListGroupPolicies", "iam:GetGroupPolicy"),
        collect=lambda scope: _collect_inline(scope, "group"),
    )
)


def _allow_statements(resource: Resource) -> Iterator[dict[str, Any]]:
    for document in resource.attributes["documents"]:
        yield from statements(document, "Allow")


def full_admin(resource: Resource) -> str | None:
    """An Allow of Action `*` on Resource `*`: full administrative rights."""
    for statement in _allow_statements(resource):
        if "*" in as_list(statement.get("Action")) and "*" in as_list(statement.get("Resource")):
            return 'a statement allows Action "*" on Resource "*"'
    return None


def service_wildcards(resource: Resource) -> str | None:
    """Allow statements with `service:*` actions."""
    found = sorted(
        {
            str(action)
            for statement in _allow_statements(resource)
            for action in as_list(statement.get("Action"))
            if _SERVICE_WILDCARD.match(str(action))
        }
    )
    return f"allows every action of: {', '.join(found)}" if found else None


_ADMIN_REMEDIATION = (
    "Replace the statement with the actions and resources the principal needs; grant "
    "administrator access only through a break-glass role."
)
_WILDCARD_REMEDIATION = (
    "List the actions the principal needs instead of service:* (a prefix such as "
    "ec2:Describe* is acceptable)."
)


def _declare_policy_controls(
    resource_type: str, admin: tuple[str, str], wildcards: tuple[str, str]
) -> None:
    """Declare the two controls on the policies of `resource_type`: no full administrative
    rights (`admin`) and no service wildcards (`wildcards`), each as (control id, title)."""
    for (control_id, title), severity, remediation, evaluate in (
        (admin, FindingSeverity.CRITICAL, _ADMIN_REMEDIATION, full_admin),
        (wildcards, FindingSeverity.LOW, _WILDCARD_REMEDIATION, service_wildcards),
    ):
        check(
            control_id,
            title=title,
            severity=severity,
            resource_type=resource_type,
            remediation=remediation,
        )(evaluate)


_declare_policy_controls(
    POLICY,
    ("IAM.1", 'IAM policies should not allow full "*" administrative privileges'),
    ("IAM.21", "IAM customer managed policies should not allow wildcard actions for services"),
)
# FSBP controls cover customer-managed policies only; inline policies get the fleet's own ids.
_declare_policy_controls(
    ROLE,
    ("FLEET.IAM.1", 'IAM role inline policies should not allow full "*" administrative privileges'),
    ("FLEET.IAM.2", "IAM role inline policies should not allow wildcard actions for services"),
)
_declare_policy_controls(
    USER,
    ("FLEET.IAM.3", 'IAM user inline policies should not allow full "*" administrative privileges'),
    ("FLEET.IAM.4", "IAM user inline policies should not allow wildcard actions for services"),
)
_declare_policy_controls(
    GROUP,
    (
        "FLEET.IAM.5",
        'IAM group inline policies should not allow full "*" administrative privileges',
    ),
    ("FLEET.IAM.6", "IAM group inline policies should not allow wildcard actions for services"),
)
