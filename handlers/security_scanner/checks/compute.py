"""EC2 security groups open to the internet, and Lambda functions (public policy, runtime)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from itertools import islice
from typing import Any

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from handlers.security_scanner.checks._aws import (
    answered_policy,
    as_list,
    described,
    is_everyone,
    listed,
    optional,
    statements,
)
from handlers.security_scanner.registry import (
    PARTIALLY_SCANNED,
    FindingSeverity,
    Resource,
    ResourceSource,
    ScanScope,
    UnreadableListingItem,
    check,
    register_source,
)
from handlers.security_scanner.world_cidrs import world_sources

SECURITY_GROUP = "AwsEc2SecurityGroup"
FUNCTION = "AwsLambdaFunction"
PUBLIC_POLICY_CONTROL = "Lambda.1"
LATEST_VERSION = "$LATEST"

RUNTIME_END_OF_SUPPORT: dict[str, date] = {
    "nodejs22.x": date(2027, 4, 30),
    "nodejs20.x": date(2026, 4, 30),
    "nodejs18.x": date(2025, 9, 1),
    "nodejs16.x": date(2024, 6, 12),
    "nodejs14.x": date(2023, 12, 4),
    "nodejs12.x": date(2023, 3, 31),
    "nodejs10.x": date(2021, 7, 30),
    "nodejs8.10": date(2020, 3, 6),
    "nodejs6.10": date(2019, 8, 12),
    "nodejs4.3": date(2020, 3, 5),
    "nodejs4.3-edge": date(2020, 3, 5),
    "nodejs": date(2016, 10, 31),
    "python3.13": date(2029, 6, 30),
    "python3.12": date(2028, 10, 31),
    "python3.11": date(2026, 6, 30),
    "python3.10": date(2026, 6, 30),
    "python3.9": date(2025, 12, 15),
    "python3.8": date(2024, 10, 14),
    "python3.7": date(2023, 12, 4),
    "python3.6": date(2022, 7, 18),
    "python2.7": date(2021, 7, 15),
    "java21": date(2029, 6, 30),
    "java17": date(2026, 6, 30),
    "java11": date(2026, 6, 30),
    "java8.al2": date(2026, 6, 30),
    "java8": date(2024, 1, 8),
    "dotnet8": date(2026, 11, 10),
    "dotnet7": date(2024, 5, 14),
    "dotnet6": date(2024, 11, 12),
    "dotnet5.0": date(2022, 5, 10),
    "dotnetcore3.1": date(2023, 4, 3),
    "dotnetcore2.1": date(2022, 1, 5),
    "dotnetcore2.0": date(2019, 5, 30),
    "dotnetcore1.0": date(2019, 7, 27),
    "ruby3.3": date(2027, 3, 31),
    "ruby3.2": date(2026, 3, 31),
    "ruby2.7": date(2023, 11, 27),
    "ruby2.5": date(2021, 7, 30),
    "go1.x": date(2024, 1, 8),
    "provided.al2023": date(2029, 6, 30),
    "provided.al2": date(2026, 6, 30),
    "provided": date(2024, 1, 8),
}
"""The day each runtime's end of support begins in Lambda (the Lambda runtimes table, November
2026): Lambda.2 fails a function on it from that day. Days still ahead are listed too, so a
runtime is flagged when its day comes, not when someone next edits this table; a set of runtimes
already deprecated went stale the day the next one was, and passed every function on it. Add a
runtime when AWS announces its end of support."""

_RESTRICTING_CONDITION_KEYS = frozenset(
    {
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:sourcevpc",
        "aws:sourcevpce",
    }
)
"""Condition keys that narrow who may call. `lambda:FunctionUrlAuthType` is not one: it names
how a function URL's caller signs in, and with `NONE` the statement is the URL open to anyone."""

S3_SERVICE_PRINCIPAL = "s3.amazonaws.com"
_S3_NARROWING_CONDITION_KEYS = frozenset({"aws:sourceaccount"})
"""What narrows the S3 service principal to its own buckets. Not `aws:SourceArn`: a bucket's ARN
names no account, and a deleted bucket's name is free for any account to take (the control's
AWS Config rule fails a function S3 may invoke without a condition such as aws:SourceAccount)."""


def _collect_security_groups(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    ec2 = scope.client("ec2")
    groups = listed(
        ec2,
        "describe_security_groups",
        "SecurityGroups",
        always_sent=True,
        next_page_allowed=scope.next_page_allowed,
    )
    # A group without its GroupId names nothing to report it under (`described`), and one
    # without IpPermissions, which EC2 sends empty too, is unreadable: read as no rules, it
    # would resolve the group's open findings.
    yield from described(
        groups,
        SECURITY_GROUP,
        listing_call="DescribeSecurityGroups",
        arn_of=lambda group: (
            f"arn:aws:ec2:{scope.region}:{scope.account_id}:security-group/{group['GroupId']}"
        ),
        describe=lambda group, arn: Resource(
            arn=arn,
            resource_type=SECURITY_GROUP,
            attributes={
                "group_name": group.get("GroupName", ""),
                "ingress": answer_field(group, "DescribeSecurityGroups", "IpPermissions"),
            },
        ),
    )


register_source(
    ResourceSource(
        resource_type=SECURITY_GROUP,
        global_service=False,
        api_calls=("ec2:DescribeSecurityGroups",),
        iam_actions=("ec2:DescribeSecurityGroups",),
        collect=_collect_security_groups,
    )
)


def _cidrs(permission: dict[str, Any]) -> list[str]:
    ranges = [r.get("CidrIp") for r in permission.get("IpRanges", [])]
    ranges += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges", [])]
    return ranges


def _all_ports(permission: dict[str, Any]) -> bool:
    if str(permission.get("IpProtocol")) == "-1":
        return True
    return permission.get("FromPort", 0) <= 0 and permission.get("ToPort", 0) >= 65535


def _opens_port(permission: dict[str, Any], port: int) -> bool:
    protocol = str(permission.get("IpProtocol"))
    if protocol == "-1":
        return True
    if protocol not in ("tcp", "6"):
        return False
    return bool(permission.get("FromPort", -1) <= port <= permission.get("ToPort", -1))


def _world_open_port(resource: Resource, port: int) -> str | None:
    """Why the group lets every address in to `port`: its rules to that port let in the world,
    one of them or all together."""
    world = world_sources(
        cidr
        for permission in resource.attributes["ingress"]
        if _opens_port(permission, port)
        for cidr in _cidrs(permission)
    )
    return f"ingress allows port {port} from {', '.join(world)}" if world else None


@check(
    "EC2.13",
    title="Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 22",
    severity=FindingSeverity.HIGH,
    resource_type=SECURITY_GROUP,
    remediation="Remove the rule or restrict port 22 to known CIDRs; prefer SSM Session Manager.",
)
def ssh_open_to_world(resource: Resource) -> str | None:
    """Port 22 (or all traffic) from the whole internet."""
    return _world_open_port(resource, 22)


@check(
    "EC2.14",
    title="Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 3389",
    severity=FindingSeverity.HIGH,
    resource_type=SECURITY_GROUP,
    remediation="Remove the rule or restrict port 3389 to known CIDRs; prefer Fleet Manager.",
)
def rdp_open_to_world(resource: Resource) -> str | None:
    """Port 3389 (or all traffic) from the whole internet."""
    return _world_open_port(resource, 3389)


@check(
    "FLEET.EC2.1",
    title="Security groups should not allow all ports from 0.0.0.0/0 or ::/0",
    severity=FindingSeverity.CRITICAL,
    resource_type=SECURITY_GROUP,
    remediation="Replace the all-traffic rule with rules for the ports the workload serves.",
)
def all_ports_open_to_world(resource: Resource) -> str | None:
    """All protocols, or every TCP/UDP port, from the whole internet (no FSBP control is this
    specific, EC2.18 is the nearest)."""
    world = world_sources(
        cidr
        for permission in resource.attributes["ingress"]
        if _all_ports(permission)
        for cidr in _cidrs(permission)
    )
    return f"ingress allows all ports from {', '.join(world)}" if world else None


QUALIFIED_POLICIES_READ = 20
"""The most aliases and published versions of one function whose resource policies a scan reads
(each has its own, `add-permission --qualifier`; one GetPolicy each): aliases first, the names a
caller is given, then the newest versions (those callers and aliases reach; Lambda lists them
oldest first). A function with more is listed under the target's not_scanned: it is evaluated on
the policies read, and a public one among them is a finding, but finding none resolves nothing.
With VERSION_PAGES_READ, the budget keeps a function's Lambda calls at 32 at most (GetPolicy of
the function, one page of ListAliases, 10 pages of ListVersionsByFunction, and these), however
many versions daily deployments published."""

VERSIONS_PER_PAGE = 50
"""The most versions one ListVersionsByFunction page holds (AWS's maximum)."""

VERSION_PAGES_READ = 10
"""The most ListVersionsByFunction pages a scan reads per function, to reach its newest versions
(the last listed): a function with more than this many pages of versions (500) costs no more,
and the newest versions read are then those of the pages read; it is partially scanned anyway,
having more versions than QUALIFIED_POLICIES_READ."""


def _collect_functions(scope: ScanScope) -> Iterator[Resource | UnreadableListingItem]:
    lambda_client = scope.client("lambda")

    def describe(function: dict[str, Any], arn: str) -> Resource:
        name = function["FunctionName"]
        runtime = function.get("Runtime")
        if runtime is not None and not isinstance(runtime, str):
            # A runtime of the wrong kind is no runtime whose support ended: the function must
            # be unreadable, not pass Lambda.2.
            raise UnreadableAnswerError(f"ListFunctions of {name}", "a text Runtime", runtime)
        document = _function_policy(lambda_client, name)
        qualifiers, more_qualifiers = _qualifiers(lambda_client, name, scope.next_page_allowed)
        qualified_policies = {
            label: _function_policy(lambda_client, name, qualifier)
            for label, qualifier in qualifiers
        }
        ends_on = RUNTIME_END_OF_SUPPORT.get(str(runtime))
        attributes: dict[str, Any] = {
            "runtime": runtime,
            "policy": document,
            "qualified_policies": qualified_policies,
            "support_ended_on": ends_on if ends_on and ends_on <= scope.scanned_on else None,
        }
        if more_qualifiers:
            attributes[PARTIALLY_SCANNED] = {
                PUBLIC_POLICY_CONTROL: f"more than {QUALIFIED_POLICIES_READ} aliases and "
                "versions, the most whose resource policies a scan reads per function"
            }
        return Resource(arn=arn, resource_type=FUNCTION, attributes=attributes)

    functions = list(
        listed(
            lambda_client,
            "list_functions",
            "Functions",
            always_sent=True,
            next_page_allowed=scope.next_page_allowed,
        )
    )
    # botocore hands a JSON answer's list items and text on unchecked: an item that is null or
    # without a text name and ARN names no function, so the listing fails (the source's error)
    # rather than the whole scan with a bare TypeError or KeyError.
    if not all(_is_named_function(function) for function in functions):
        raise UnreadableAnswerError(
            "ListFunctions",
            "an object with a text FunctionName and FunctionArn for each of Functions",
            [_listed_name(function) for function in functions],
        )
    yield from described(
        functions,
        FUNCTION,
        listing_call="ListFunctions",
        arn_of=lambda function: function["FunctionArn"],
        describe=describe,
    )


def _is_named_function(function: object) -> bool:
    """Whether a ListFunctions item is an object with a text FunctionName and FunctionArn."""
    return isinstance(function, Mapping) and all(
        isinstance(function.get(key), str) for key in ("FunctionName", "FunctionArn")
    )


def _listed_name(function: object) -> object:
    """What an error shows of a ListFunctions item: its name, never its environment."""
    return function.get("FunctionName") if isinstance(function, Mapping) else function


def _qualifiers(
    lambda_client: Any, name: str, next_page_allowed: Callable[[], bool]
) -> tuple[list[tuple[str, str]], bool]:
    """The function's aliases, then its newest published versions, as (label, qualifier): at most
    QUALIFIED_POLICIES_READ of them, and whether the function has more. The versions are listed
    over VERSION_PAGES_READ pages at most (Lambda lists them oldest first). A page without its
    list (`Aliases`, `Versions`) fails the function rather than reading as one without any: Lambda
    sends both lists, and `Versions` is never empty (every function has `$LATEST`)."""
    wanted = QUALIFIED_POLICIES_READ + 1
    aliases = listed(
        lambda_client,
        "list_aliases",
        "Aliases",
        always_sent=True,
        next_page_allowed=next_page_allowed,
        FunctionName=name,
        PaginationConfig={"PageSize": wanted},
    )
    qualifiers = [
        (f"alias {alias}", alias)
        for alias in (answer_field(item, "ListAliases", "Name") for item in islice(aliases, wanted))
    ]
    if len(qualifiers) == wanted:
        return qualifiers[:QUALIFIED_POLICIES_READ], True
    versions = listed(
        lambda_client,
        "list_versions_by_function",
        "Versions",
        always_sent=True,
        next_page_allowed=next_page_allowed,
        max_pages=VERSION_PAGES_READ,
        FunctionName=name,
        PaginationConfig={"PageSize": VERSIONS_PER_PAGE},
    )
    listed_versions = (answer_field(item, "ListVersionsByFunction", "Version") for item in versions)
    room = QUALIFIED_POLICIES_READ - len(qualifiers)
    # Lambda lists versions oldest first: the last ones are kept, one more than the room, so
    # that a function with more versions is known as one.
    newest = deque(
        (version for version in listed_versions if version != LATEST_VERSION), maxlen=room + 1
    )
    more = len(newest) > room
    if more:
        newest.popleft()
    qualifiers += [(f"version {version}", version) for version in reversed(newest)]
    return qualifiers, more


def _function_policy(
    lambda_client: Any, name: str, qualifier: str | None = None
) -> dict[str, Any] | None:
    """The resource policy of the function, or of one of its aliases or versions (each has its
    own), as a document; None without one."""
    qualified = {} if qualifier is None else {"Qualifier": qualifier}
    policy = optional(
        lambda: lambda_client.get_policy(FunctionName=name, **qualified),
        "ResourceNotFoundException",
    )
    return answered_policy(policy, "GetPolicy")


register_source(
    ResourceSource(
        resource_type=FUNCTION,
        global_service=False,
        api_calls=(
            "lambda:ListFunctions",
            "lambda:GetPolicy",
            "lambda:ListAliases",
            "lambda:ListVersionsByFunction",
        ),
        iam_actions=(
            "lambda:ListFunctions",
            "lambda:GetPolicy",
            "lambda:ListAliases",
            "lambda:ListVersionsByFunction",
        ),
        collect=_collect_functions,
    )
)


@check(
    PUBLIC_POLICY_CONTROL,
    title="Lambda function policies should prohibit public access",
    severity=FindingSeverity.CRITICAL,
    resource_type=FUNCTION,
    remediation="Remove the statement with Principal * or add an aws:SourceAccount/aws:SourceArn "
    "condition, for s3.amazonaws.com aws:SourceAccount (aws lambda remove-permission, with "
    "--qualifier for an alias's or a version's policy).",
)
def public_function_policy(resource: Resource) -> str | None:
    """An Allow statement for everyone without a condition that narrows the caller, or for
    Amazon S3 without one that narrows it to fixed accounts, in the function's policy or in one
    of its aliases' or published versions'."""
    policies = {None: resource.attributes["policy"], **resource.attributes["qualified_policies"]}
    for qualifier, policy in policies.items():
        public = _public_statement(policy)
        if public is not None:
            return public if qualifier is None else f"{qualifier}: {public}"
    return None


def _public_statement(policy: dict[str, Any] | None) -> str | None:
    """Why `policy` lets anyone call: its first such statement, or None. Anyone is any principal
    without a condition that narrows the caller, or Amazon S3 without one that narrows it to
    the buckets of fixed accounts."""
    for statement in statements(policy, "Allow"):
        principal = statement.get("Principal")
        if is_everyone(principal):
            narrowing_keys, why = _RESTRICTING_CONDITION_KEYS, "allows any principal"
        elif S3_SERVICE_PRINCIPAL in _services(principal):
            narrowing_keys = _S3_NARROWING_CONDITION_KEYS
            why = (
                "lets Amazon S3 invoke it for a bucket of any account (no aws:SourceAccount "
                "condition of fixed values)"
            )
        else:
            continue
        if not _narrowed(statement, narrowing_keys):
            return f"statement {statement.get('Sid', '(no Sid)')} {why}"
    return None


def _services(principal: Any) -> set[str]:
    """The service principals of a statement's `Principal`, in lower case (service principal
    names are not case-sensitive)."""
    if not isinstance(principal, dict):
        return set()
    return {str(service).lower() for service in as_list(principal.get("Service"))}


def _narrowed(statement: dict[str, Any], keys: frozenset[str]) -> bool:
    """Whether a condition of `statement` on one of `keys` names fixed values."""
    return any(
        key.lower() in keys and _fixed(values)
        for operator in (statement.get("Condition") or {}).values()
        if isinstance(operator, dict)
        for key, values in operator.items()
    )


def _fixed(values: Any) -> bool:
    """Whether a condition's values name fixed sources: a wildcard or a policy variable in one
    (`arn:aws:s3:::*`, `${aws:PrincipalAccount}`) admits any caller's, as in AWS Config's rule
    for Lambda.1."""
    return all(
        not any(mark in str(value) for mark in ("*", "?", "${")) for value in as_list(values)
    )


@check(
    "Lambda.2",
    title="Lambda functions should use supported runtimes",
    severity=FindingSeverity.MEDIUM,
    resource_type=FUNCTION,
    remediation="Move the function to a supported runtime (see the Lambda runtimes page).",
)
def deprecated_runtime(resource: Resource) -> str | None:
    """Zip functions on a runtime whose end of support began by the scan's day; container images
    have no runtime to judge."""
    ended_on = resource.attributes["support_ended_on"]
    if ended_on is None:
        return None
    return f"runtime {resource.attributes['runtime']} is deprecated since {ended_on.isoformat()}"
