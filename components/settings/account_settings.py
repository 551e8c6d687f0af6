"""The hub's and the members' settings: their accounts, regions, networks and clusters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from components.exceptions import FieldValueError
from components.settings.cluster_settings import ClusterSettings
from components.settings.value_checks import (
    PRIVATE_RANGES,
    AccountId,
    Name,
    OutputKey,
    Region,
    RoleArn,
    StackName,
    StrictModel,
    ipv4_network,
    unique_values,
)
from fleet_shared.validation_errors import shown_value

# Written in a network's stack reference where each region's stack name differs.
REGION_PLACEHOLDER = "{region}"


class StackReferenceNetwork(StrictModel):
    """VPC and subnets exported by another project's stack; `{region}` is filled per region."""

    stack_reference: StackName
    vpc_id_output: OutputKey = "vpcId"
    private_subnet_ids_output: OutputKey = "privateSubnetIds"

    @field_validator("stack_reference")
    @classmethod
    def _only_the_region_placeholder(cls, reference: str) -> str:
        # Braces are no characters of a stack name: any other than `{region}` is a misspelling
        # that would reach `pulumi up` as written.
        rest = reference.replace(REGION_PLACEHOLDER, "")
        if "{" in rest or "}" in rest:
            raise ValueError(
                f"{shown_value(reference)} has braces other than {REGION_PLACEHOLDER}, the only "
                "placeholder (replaced by each of the account's regions)"
            )
        return reference


class CreatedNetwork(StrictModel):
    """A VPC that this program creates, for accounts that have no network project."""

    create: Literal[True]
    cidr: str
    availability_zones: int = Field(default=3, ge=2, le=6)

    @field_validator("cidr")
    @classmethod
    def _usable_cidr(cls, cidr: str) -> str:
        network = ipv4_network(cidr)
        if not 16 <= network.prefixlen <= 24:
            raise ValueError(f"VPC CIDR {cidr} must be between /16 and /24")
        if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
            raise ValueError(
                f"VPC CIDR {cidr} is not a private range (10.0.0.0/8, 172.16.0.0/12 or "
                "192.168.0.0/16)"
            )
        return cidr


def _network_kind(value: Any) -> str:
    # Pick the variant by its keys so that errors talk about the variant the user meant.
    if (isinstance(value, Mapping) and "create" in value) or isinstance(value, CreatedNetwork):
        return "CreatedNetwork"
    return "StackReferenceNetwork"


NetworkSettings = Annotated[
    Annotated[CreatedNetwork, Tag("CreatedNetwork")]
    | Annotated[StackReferenceNetwork, Tag("StackReferenceNetwork")],
    Discriminator(_network_kind),
]


class AccountBase(StrictModel):
    account_id: AccountId
    name: Name
    deploy_role_arn: RoleArn

    @model_validator(mode="after")
    def _role_in_account(self) -> Self:
        role_account = self.deploy_role_arn.split(":")[4]
        if role_account != self.account_id:
            raise FieldValueError(
                "deploy_role_arn",
                f"the role is in account {role_account}, not in account {self.account_id}",
            )
        return self


class HubSettings(AccountBase):
    region: Region


class MemberSettings(AccountBase):
    regions: list[Region] = Field(min_length=1)
    network: NetworkSettings | None = None
    """Where the VPC of the clusters the program creates comes from; an account that creates
    none (its clusters all `existing`) needs none."""
    clusters: list[ClusterSettings] = Field(default_factory=list)

    @field_validator("regions")
    @classmethod
    def _regions_unique(cls, regions: list[str]) -> list[str]:
        unique_values(regions, "region")
        return regions

    @model_validator(mode="after")
    def _a_network_stack_per_region(self) -> Self:
        # A VPC is in one region: one stack cannot give the networks of two.
        network = self.network
        regions = self.network_regions()
        if (
            isinstance(network, StackReferenceNetwork)
            and len(regions) > 1
            and REGION_PLACEHOLDER not in network.stack_reference
        ):
            raise FieldValueError(
                "network.stack_reference",
                f"the account creates clusters in {len(regions)} regions, but this names one "
                f"stack, whose VPC is in one region; write {REGION_PLACEHOLDER} where each "
                "region's stack name differs",
            )
        return self

    @model_validator(mode="after")
    def _clusters_placed(self) -> Self:
        unique_values([cluster.name for cluster in self.clusters], "cluster name", "clusters")
        for index, cluster in enumerate(self.clusters):
            if cluster.region is None and len(self.regions) > 1:
                raise FieldValueError(
                    f"clusters[{index}].region",
                    f"required for cluster {cluster.name!r}: the account has "
                    f"{len(self.regions)} regions, and a cluster without one would follow the "
                    "first of them, moving to another region (a new cluster, the old one "
                    "deleted) when they are reordered or one is added in front",
                )
            if cluster.region is not None and cluster.region not in self.regions:
                raise FieldValueError(
                    f"clusters[{index}].region",
                    f"cluster {cluster.name!r} is in region {cluster.region}, "
                    f"which is not one of the account's regions {self.regions}",
                )
        if self.network is None and self.network_regions():
            raise FieldValueError(
                "network",
                "required: the account creates clusters, whose VPC comes from a stack reference "
                "or `create: true`",
            )
        return self

    def cluster_region(self, cluster: ClusterSettings) -> str:
        """A cluster without a region lives in the account's one region."""
        return cluster.region or self.regions[0]

    def network_regions(self) -> list[str]:
        """The account's regions where the program creates a cluster, in the account's order:
        the only ones that need a network (an existing cluster keeps its own VPC)."""
        created = {self.cluster_region(c) for c in self.clusters if not c.existing}
        return [region for region in self.regions if region in created]
