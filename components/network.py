"""The VPC and private subnets of a member account in one region.

Networks normally belong to another project and arrive through a stack reference; an account
without one can ask this program to create a VPC (settings: `network: {create: true, cidr}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from components.exceptions import StackSettingsError
from components.settings import (
    REGION_PLACEHOLDER,
    CreatedNetwork,
    NetworkSettings,
    StackReferenceNetwork,
)

# A created VPC's range is cut into equal slots, the first N for the private subnets of N zones and
# the next N for their public ones. Eight slots hold up to four zones and are what every network
# created so far was cut into; a subnet whose range changes is replaced, so they stay eight there.
# Five or six zones take sixteen: on a /24, the narrowest range accepted, those are /28s, the
# smallest subnet AWS allows.
MIN_SLOT_BITS = 3


def subnet_ranges(cidr: str, zones: int) -> tuple[list[IPv4Network], list[IPv4Network]]:
    """The private subnet of each zone, and its public one, in zone order."""
    slot_bits = max(MIN_SLOT_BITS, (2 * zones - 1).bit_length())
    slots = list(IPv4Network(cidr).subnets(prefixlen_diff=slot_bits))
    return slots[:zones], slots[zones : 2 * zones]


def zone_of_subnet(names: list[str], index: int, args: AccountNetworkArgs) -> str:
    """The zone of the `index`th subnet pair: one zone each, never two pairs in one zone."""
    if index >= len(names):
        error = StackSettingsError(
            args.stack,
            f"{args.field}.availability_zones",
            f"{args.network.availability_zones} zones asked for, but {args.region} offers "
            f"{len(names)} ({', '.join(names)})",
        )
        # Known only once the region's zones are read; RunError ends the run with this one line.
        raise pulumi.RunError(str(error))
    return names[index]


@dataclass(frozen=True)
class AccountNetworkArgs:
    network: NetworkSettings
    region: str
    provider: aws.Provider
    stack: str
    field: str
    """The network's path in the stack file (`members[0].network`), for errors."""


class AccountNetwork(pulumi.ComponentResource):
    """Exposes `vpc_id` and `private_subnet_ids`, wherever they come from."""

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: AccountNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-fleet:network:AccountNetwork", name, None, opts)
        if isinstance(args.network, StackReferenceNetwork):
            self._from_stack_reference(name, args.network, args.region)
        else:
            self._create(name, args.network, args)
        self.register_outputs(
            {"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids}
        )

    def _from_stack_reference(self, name: str, network: StackReferenceNetwork, region: str) -> None:
        reference = pulumi.StackReference(
            f"{name}-stack-ref",
            stack_name=network.stack_reference.replace(REGION_PLACEHOLDER, region),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.vpc_id = pulumi.Output.from_input(reference.require_output(network.vpc_id_output))
        self.private_subnet_ids = pulumi.Output.from_input(
            reference.require_output(network.private_subnet_ids_output)
        )

    def _create(self, name: str, network: CreatedNetwork, args: AccountNetworkArgs) -> None:
        provider = args.provider
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)
        )
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=network.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{name}-vpc"},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            opts=child,
        )
        private_ranges, public_ranges = subnet_ranges(network.cidr, network.availability_zones)
        private_ids: list[pulumi.Output[str]] = []
        nat_gateway: aws.ec2.NatGateway | None = None
        private_routes: aws.ec2.RouteTable | None = None
        for index in range(network.availability_zones):
            zone = zones.names.apply(lambda names, i=index: zone_of_subnet(names, i, args))
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=vpc.id,
                cidr_block=str(public_ranges[index]),
                availability_zone=zone,
                tags={"Name": f"{name}-public-{index}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}",
                subnet_id=public.id,
                route_table_id=public_routes.id,
                opts=child,
            )
            if nat_gateway is None:
                address = aws.ec2.Eip(f"{name}-nat", domain="vpc", opts=child)
                nat_gateway = aws.ec2.NatGateway(
                    f"{name}-nat", allocation_id=address.id, subnet_id=public.id, opts=child
                )
                private_routes = aws.ec2.RouteTable(
                    f"{name}-private",
                    vpc_id=vpc.id,
                    routes=[
                        aws.ec2.RouteTableRouteArgs(
                            cidr_block="0.0.0.0/0", nat_gateway_id=nat_gateway.id
                        )
                    ],
                    opts=child,
                )
            private = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=str(private_ranges[index]),
                availability_zone=zone,
                tags={"Name": f"{name}-private-{index}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            assert private_routes is not None
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}",
                subnet_id=private.id,
                route_table_id=private_routes.id,
                opts=child,
            )
            private_ids.append(private.id)
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*private_ids).apply(list)
