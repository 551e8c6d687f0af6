"""Read the hub account's resources out of a program run, the way the tests look at them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from catalog import FUNCTIONS, FunctionSpec
from components.naming import function_name
from components.settings import FleetSettings, load_settings
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, RegisteredResource, read_stack_file

FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"

# Where each resource type keeps a policy document among its inputs.
POLICY_INPUTS = {
    ROLE_POLICY: "policy",
    IAM_POLICY: "policy",
    ROLE: "assumeRolePolicy",
    "aws:kms/key:Key": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": "policy",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass
class HubView:
    run: ProgramRun
    project_dir: Path = REPO_ROOT  # where the run's stack file is (tests may write their own)

    @cached_property
    def settings(self) -> FleetSettings:
        config = read_stack_file(self.project_dir / f"Pulumi.{self.run.stack}.yaml")
        document = {
            key.split(":", 1)[1]: value
            for key, value in config.items()
            if key.startswith("lambda-fleet:")
        }
        return load_settings(self.run.stack, document)

    @property
    def stack(self) -> str:
        return self.run.stack

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        """Resources of this type in the hub account (member accounts are tested apart)."""
        return [resource for resource in self.run.of_type(type_token) if self.in_hub(resource)]

    @cached_property
    def hub_urns(self) -> frozenset[str]:
        """The FleetHub component and everything below it."""
        (hub,) = self.run.of_type("lambda-fleet:hub:FleetHub")
        return frozenset([hub.urn, *(child.urn for child in self.run.descendants_of(hub.urn))])

    def in_hub(self, resource: RegisteredResource) -> bool:
        return resource.urn in self.hub_urns

    def one(self, type_token: str, **inputs: Any) -> RegisteredResource:
        """The one hub resource of this type with these inputs (members have their own)."""
        found = [
            resource
            for resource in self.of_type(type_token)
            if all(resource.inputs.get(key) == value for key, value in inputs.items())
        ]
        assert len(found) == 1, (type_token, inputs, [resource.name for resource in found])
        return found[0]

    def function(self, spec: FunctionSpec) -> RegisteredResource:
        return self.one(FUNCTION, name=function_name(self.stack, spec.name))

    @property
    def enabled_functions(self) -> tuple[FunctionSpec, ...]:
        """The catalog entries the stack deploys (a stack file may switch some off)."""
        return self.settings.enabled_functions(FUNCTIONS)

    def functions(self) -> list[tuple[FunctionSpec, RegisteredResource]]:
        return [(spec, self.function(spec)) for spec in self.enabled_functions]

    def arn(self, resource: RegisteredResource) -> str:
        return resource.outputs["arn"]

    def policies(self) -> list[tuple[RegisteredResource, dict[str, Any]]]:
        """Every policy document of the hub, parsed, with the resource that carries it."""
        found = []
        for resource in self.run.resources:
            if not self.in_hub(resource):
                continue
            key = POLICY_INPUTS.get(resource.type)
            if key and resource.inputs.get(key):
                found.append((resource, json.loads(resource.inputs[key])))
        return found

    def statements(self, *types: str) -> list[tuple[RegisteredResource, dict[str, Any]]]:
        return [
            (resource, statement)
            for resource, policy in self.policies()
            if not types or resource.type in types
            for statement in policy["Statement"]
        ]

    def dead_letter_queue_arn(self, spec: FunctionSpec) -> str:
        return (
            f"arn:aws:sqs:{self.settings.hub.region}:{self.settings.hub.account_id}:"
            f"{function_name(self.stack, spec.name)}-dlq"
        )
