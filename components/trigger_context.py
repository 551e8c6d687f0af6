"""What every trigger builder receives: where to create resources and what they connect to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.fleet_function import FleetFunction
from components.function_wiring import FleetReferences
from components.naming import resource_prefix

# A trigger type's builder gets every (function, trigger) pair of that type, in catalog order:
# some triggers share one resource (the bucket notification, the HTTP API, the bus policy).
# It returns the resources worth exporting from the stack, by name (usually none).
Binding = tuple[FleetFunction, Any]
BuiltTriggers = dict[str, pulumi.Resource]
TriggerBuilder = Callable[["TriggerContext", Sequence[Binding]], BuiltTriggers]


@dataclass(frozen=True)
class TriggerContext:
    """The triggers component, its name, the hub provider and the resources triggers attach to."""

    parent: pulumi.ComponentResource
    name: str
    provider: aws.Provider
    references: FleetReferences
    data_bucket: aws.s3.Bucket
    topics: dict[str, aws.sns.Topic]

    @property
    def child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, provider=self.provider)

    def child_after(self, *resources: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(
            self.child, pulumi.ResourceOptions(depends_on=list(resources))
        )

    @property
    def prefix(self) -> str:
        return resource_prefix(self.references.stack)

    @property
    def account_id(self) -> str:
        return self.references.account_id

    @property
    def region(self) -> str:
        return self.references.region
