"""Answers of the offline plan's Pulumi mocks: what AWS and other stacks would return.

Ids and ARNs are built from the account and region of the provider a resource is created with,
and are derived from names by hashing, so the same program gives the same plan every time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime import rpc

from components.naming import DEFAULT_EVENT_BUS, event_rule_arn
from fleetctl.exceptions import PlanError

UNPLACED_ACCOUNT = "000000000000"
UNPLACED_REGION = "us-east-1"
# The zone letters of a region, as AWS lists them to an account: most regions have three,
# us-east-1 has six (the most zones a created network may span).
ZONE_LETTERS = {"us-east-1": "abcdef"}
DEFAULT_ZONE_LETTERS = "abc"


@dataclass(frozen=True)
class ProviderPlacement:
    """The account and region an AWS provider acts in, as its inputs declare them."""

    account_id: str
    region: str
    role_arn: str | None
    default_tags: dict[str, str]


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def placement_from_provider_inputs(inputs: Mapping[str, Any]) -> ProviderPlacement:
    allowed = _maybe_json(inputs.get("allowedAccountIds")) or [UNPLACED_ACCOUNT]
    roles = _maybe_json(inputs.get("assumeRoles")) or []
    tags = (_maybe_json(inputs.get("defaultTags")) or {}).get("tags") or {}
    return ProviderPlacement(
        account_id=str(allowed[0]),
        region=str(inputs.get("region") or UNPLACED_REGION),
        role_arn=roles[0].get("roleArn") if roles else None,
        default_tags=dict(tags),
    )


# Resource types whose AWS id has a recognisable prefix rather than being the name.
ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:apigatewayv2/api:Api": "",
}

EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
LAMBDA_ALIAS = "aws:lambda/alias:Alias"

# Resource types whose physical name is an input other than `name`.
NAME_INPUTS = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:lambda/layerVersion:LayerVersion": "layerName",
    "aws:cloudwatch/dashboard:Dashboard": "dashboardName",
}


def _arn(type_token: str, physical: str, account: str, region: str, iam_path: str = "/") -> str:
    module = type_token.split(":")[1].split("/", maxsplit=1)[0]
    arns: dict[str, Callable[[], str]] = {
        "s3": lambda: f"arn:aws:s3:::{physical}",
        # As IAM does, the ARN of a role or policy carries its path.
        "iam": lambda: f"arn:aws:iam::{account}:{_iam_kind(type_token)}{iam_path}{physical}",
        "lambda": lambda: (
            f"arn:aws:lambda:{region}:{account}:{_lambda_kind(type_token)}:{physical}"
        ),
        "sns": lambda: f"arn:aws:sns:{region}:{account}:{physical}",
        "sqs": lambda: f"arn:aws:sqs:{region}:{account}:{physical}",
        "dynamodb": lambda: f"arn:aws:dynamodb:{region}:{account}:table/{physical}",
        "kms": lambda: f"arn:aws:kms:{region}:{account}:key/{physical}",
        "cloudwatch": lambda: f"arn:aws:logs:{region}:{account}:log-group:{physical}",
        "scheduler": lambda: f"arn:aws:scheduler:{region}:{account}:schedule/default/{physical}",
        "secretsmanager": lambda: f"arn:aws:secretsmanager:{region}:{account}:secret:{physical}",
        "eks": lambda: f"arn:aws:eks:{region}:{account}:cluster/{physical}",
    }
    if module == "cloudwatch" and "logGroup" not in type_token:
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{physical}"
    if module in arns:
        return arns[module]()
    kind = type_token.rsplit(":", 1)[-1].lower()
    return f"arn:aws:{module}:{region}:{account}:{kind}/{physical}"


def _iam_kind(type_token: str) -> str:
    return "policy" if type_token.endswith(":Policy") else "role"


def _lambda_kind(type_token: str) -> str:
    return "layer" if "layerVersion" in type_token else "function"


def _availability_zones(region: str) -> dict[str, Any]:
    letters = ZONE_LETTERS.get(region, DEFAULT_ZONE_LETTERS)
    zone_id_prefix = f"{region[:2]}{region.split('-')[1][:1]}1"
    return {
        "id": region,
        "names": [f"{region}{letter}" for letter in letters],
        "zoneIds": [f"{zone_id_prefix}-az{n}" for n in range(1, len(letters) + 1)],
        "groupNames": [region],
    }


class FleetMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that know which provider places a resource in which account and region."""

    def __init__(self, stack_reference_outputs: Mapping[str, Mapping[str, Any]]) -> None:
        self._placements: dict[str, ProviderPlacement] = {}
        self._stack_reference_outputs = stack_reference_outputs

    def remember_provider(self, reference: str, inputs: Mapping[str, Any]) -> None:
        self._placements[reference] = placement_from_provider_inputs(inputs)

    def placement(self, provider_reference: str | None) -> ProviderPlacement | None:
        return self._placements.get(provider_reference or "")

    def placement_of(self, request: Any) -> ProviderPlacement | None:
        """Where a registration lands: its own AWS provider, or the aws provider of a component.

        Providers of other packages (such as `eks`) have no account or region.
        """
        if request.type == "pulumi:providers:aws":
            return placement_from_provider_inputs(rpc.deserialize_properties(request.object))
        if request.type.startswith("pulumi:providers:"):
            return None
        own = self.placement(request.provider) if request.provider else None
        providers = dict(getattr(request, "providers", {}))
        return own or self.placement(providers.get("aws"))

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(args)
        if args.typ.startswith("pulumi:providers:"):
            return f"provider-{_digest(args.name)}", dict(args.inputs)
        placement = self.placement(args.provider)
        account = placement.account_id if placement else UNPLACED_ACCOUNT
        region = placement.region if placement else UNPLACED_REGION
        physical = str(
            args.inputs.get(NAME_INPUTS.get(args.typ, "name"))
            or args.inputs.get("name")
            or f"{args.name}-{_digest(args.name, length=7)}"
        )
        prefix = ID_PREFIXES.get(args.typ)
        resource_id = (
            f"{prefix}{_digest(args.typ, args.name, account, region)}"
            if prefix is not None
            else physical
        )
        if args.typ == EVENT_RULE:
            # As EventBridge does, a rule on a custom bus carries the bus's name in its ARN.
            bus = str(args.inputs.get("eventBusName") or DEFAULT_EVENT_BUS)
            arn = event_rule_arn(region, account, bus, physical)
        elif args.typ == LAMBDA_ALIAS:
            # An alias's ARN is its function's, qualified by the alias's name.
            function = args.inputs.get("functionName")
            arn = f"arn:aws:lambda:{region}:{account}:function:{function}:{physical}"
        else:
            arn = _arn(args.typ, physical, account, region, str(args.inputs.get("path") or "/"))
        state = {**args.inputs, "arn": arn, "name": args.inputs.get("name", physical)}
        state.update(
            _type_specific_outputs(
                args.typ, physical, resource_id, arn, account=account, region=region
            )
        )
        return resource_id, state

    def _stack_reference(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        name = str(args.inputs.get("name"))
        outputs = self._stack_reference_outputs.get(name)
        if outputs is None:
            raise PlanError(f"no outputs are known offline for stack reference {name!r}")
        return name, {"name": name, "outputs": dict(outputs), "secretOutputNames": []}

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        placement = self.placement(args.provider)
        account = placement.account_id if placement else UNPLACED_ACCOUNT
        region = placement.region if placement else UNPLACED_REGION
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": lambda: {
                "accountId": account,
                "arn": f"arn:aws:sts::{account}:assumed-role/deploy/lambda-fleet",
                "userId": f"AROA{_digest(account, length=16).upper()}:lambda-fleet",
                "id": account,
            },
            "aws:index/getRegion:getRegion": lambda: {
                "name": region,
                "region": region,
                "id": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            },
            "aws:index/getPartition:getPartition": lambda: {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            },
            "aws:index/getAvailabilityZones:getAvailabilityZones": lambda: _availability_zones(
                region
            ),
            "aws:iam/getPolicyDocument:getPolicyDocument": lambda: {
                "json": render_policy_document(args.args),
                "minifiedJson": json.dumps(
                    json.loads(render_policy_document(args.args)), separators=(",", ":")
                ),
                "id": _digest(json.dumps(args.args, sort_keys=True, default=str)),
            },
        }
        if args.token not in answers:
            raise PlanError(f"the offline plan has no answer for the call {args.token}")
        return answers[args.token]()


def _type_specific_outputs(
    type_token: str, physical: str, resource_id: str, arn: str, *, account: str, region: str
) -> dict[str, Any]:
    if type_token in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        return {
            "bucket": physical,
            "bucketDomainName": f"{physical}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{physical}.s3.{region}.amazonaws.com",
            "region": region,
        }
    if type_token == "aws:sqs/queue:Queue":
        return {"url": f"https://sqs.{region}.amazonaws.com/{account}/{physical}"}
    if type_token == "aws:lambda/function:Function":
        invoke = f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        return {"invokeArn": invoke, "qualifiedArn": f"{arn}:$LATEST", "version": "$LATEST"}
    if type_token == "aws:lambda/layerVersion:LayerVersion":
        return {"layerArn": arn, "arn": f"{arn}:1", "version": "1"}
    if type_token == "aws:kms/key:Key":
        return {"keyId": physical}
    if type_token == "aws:iam/role:Role":
        return {"uniqueId": f"AROA{_digest(arn, length=16).upper()}"}
    if type_token == "aws:apigatewayv2/api:Api":
        return {
            "apiEndpoint": f"https://{resource_id}.execute-api.{region}.amazonaws.com",
            "executionArn": f"arn:aws:execute-api:{region}:{account}:{resource_id}",
        }
    if type_token == "aws:dynamodb/table:Table":
        return {"streamArn": f"{arn}/stream/2026-01-01T00:00:00.000"}
    return {}


def render_policy_document(args: Mapping[str, Any]) -> str:
    """Render `aws.iam.get_policy_document` arguments as the IAM JSON the provider returns."""
    statements = []
    for statement in args.get("statements") or []:
        rendered: dict[str, Any] = {}
        if statement.get("sid"):
            rendered["Sid"] = statement["sid"]
        rendered["Effect"] = statement.get("effect") or "Allow"
        for key, element in (
            ("actions", "Action"),
            ("notActions", "NotAction"),
            ("resources", "Resource"),
            ("notResources", "NotResource"),
        ):
            values = statement.get(key)
            if values:
                rendered[element] = values[0] if len(values) == 1 else list(values)
        principals: dict[str, Any] = {}
        for principal in statement.get("principals") or []:
            identifiers = list(principal["identifiers"])
            principals[principal["type"]] = identifiers[0] if len(identifiers) == 1 else identifiers
        if principals:
            rendered["Principal"] = principals
        conditions: dict[str, dict[str, Any]] = {}
        for condition in statement.get("conditions") or []:
            values = list(condition["values"])
            conditions.setdefault(condition["test"], {})[condition["variable"]] = (
                values[0] if len(values) == 1 else values
            )
        if conditions:
            rendered["Condition"] = conditions
        statements.append(rendered)
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, indent=2)


def network_outputs_from_config(config: Mapping[str, Any], project: str) -> dict[str, dict]:
    """What each referenced network stack exports, for the stack references the settings name.

    Read from the raw stack config (before validation) so a broken file still fails in the
    program, with the program's message, rather than here.
    """
    members = config.get(f"{project}:members")
    outputs: dict[str, dict] = {}
    if not isinstance(members, list):
        return outputs
    for member in members:
        network = member.get("network") if isinstance(member, Mapping) else None
        regions = member.get("regions") if isinstance(member, Mapping) else None
        if not isinstance(network, Mapping) or "stack_reference" not in network:
            continue
        for region in regions if isinstance(regions, list) else []:
            name = str(network["stack_reference"]).replace("{region}", str(region))
            vpc_id = f"vpc-{_digest(name)}"
            outputs[name] = {
                str(network.get("vpc_id_output", "vpcId")): vpc_id,
                str(network.get("private_subnet_ids_output", "privateSubnetIds")): [
                    f"subnet-{_digest(name, zone)}" for zone in "abc"
                ],
            }
    return outputs
