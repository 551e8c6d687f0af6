"""A network the program creates: N private and N public subnets that fit the VPC's range."""

from __future__ import annotations

import copy
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from components.network import subnet_ranges
from components.settings import CreatedNetwork
from fleetctl.mocked_program import (
    REPO_ROOT,
    ProgramFailedError,
    ProgramRun,
    RegisteredResource,
    read_stack_file,
    run_program,
)

SUBNET = "aws:ec2/subnet:Subnet"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
PRIVATE_ROLE = "kubernetes.io/role/internal-elb"
PUBLIC_ROLE = "kubernetes.io/role/elb"
# us-east-1 lists six zones under the mocks, as many as a created network may span.
SIX_ZONE_REGION = "us-east-1"
WIDEST, NARROWEST = "10.40.0.0/16", "10.40.0.0/24"
SMALLEST_AWS_SUBNET_PREFIX = 28

# The subnets a created 10.40.0.0/16 had before five and six zones were possible; a subnet whose
# range changes is replaced, so these must stay as they are.
SUBNETS_OF_EXISTING_NETWORKS = {
    2: (
        ["10.40.0.0/19", "10.40.32.0/19"],
        ["10.40.64.0/19", "10.40.96.0/19"],
    ),
    3: (
        ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"],
        ["10.40.96.0/19", "10.40.128.0/19", "10.40.160.0/19"],
    ),
    4: (
        ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19", "10.40.96.0/19"],
        ["10.40.128.0/19", "10.40.160.0/19", "10.40.192.0/19", "10.40.224.0/19"],
    ),
}


@pytest.fixture(scope="module")
def created_network_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[int, str], ProgramRun]:
    """The dev program with its member in a six-zone region creating `cidr` over `zones` zones.

    Each (zones, cidr) runs once per module; runs are deterministic and read-only.
    """
    runs: dict[tuple[int, str], ProgramRun] = {}

    def run(zones: int, cidr: str) -> ProgramRun:
        if (zones, cidr) not in runs:
            config = copy.deepcopy(read_stack_file(REPO_ROOT / "Pulumi.dev.yaml"))
            member = config["lambda-fleet:members"][0]
            member["regions"] = [SIX_ZONE_REGION]
            member["network"] = {"create": True, "cidr": cidr, "availability_zones": zones}
            project = tmp_path_factory.mktemp(f"network-{zones}-{cidr.replace('/', '-')}")
            _write_project(project, config)
            runs[(zones, cidr)] = run_program("dev", project)
        return runs[(zones, cidr)]

    return run


def _write_project(project: Path, config: dict[str, Any]) -> None:
    (project / "__main__.py").write_text((REPO_ROOT / "__main__.py").read_text())
    (project / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}))


def _subnets(run: ProgramRun, role: str) -> list[RegisteredResource]:
    """The subnets tagged for `role`, in zone order (their names end with the zone's index)."""
    tagged = [s for s in run.of_type(SUBNET) if s.inputs["tags"].get(role) == "1"]
    return sorted(tagged, key=lambda subnet: int(subnet.name.rsplit("-", 1)[1]))


def _cidrs(subnets: list[RegisteredResource]) -> list[str]:
    return [subnet.inputs["cidrBlock"] for subnet in subnets]


@pytest.mark.parametrize("cidr", [WIDEST, NARROWEST])
@pytest.mark.parametrize("zones", [2, 3, 4, 5, 6])
def test_each_zone_gets_one_private_and_one_public_subnet_inside_the_range_without_overlap(
    created_network_run: Callable[[int, str], ProgramRun], zones: int, cidr: str
) -> None:
    # GIVEN a member that creates its network over `zones` zones of a six-zone region
    # WHEN the program runs under the mocks
    run = created_network_run(zones, cidr)
    private, public = _subnets(run, PRIVATE_ROLE), _subnets(run, PUBLIC_ROLE)
    # THEN there are N private and N public subnets, the private ones exported
    assert (len(private), len(public)) == (zones, zones)
    exported = run.stack_outputs["networks"][f"222222222222/{SIX_ZONE_REGION}"]
    assert len(exported["private_subnet_ids"]) == zones
    # AND all lie inside the VPC's range, overlap none of the others and are at least /28
    vpc = IPv4Network(cidr)
    ranges = [IPv4Network(block) for block in _cidrs(private) + _cidrs(public)]
    assert all(subnet.subnet_of(vpc) for subnet in ranges)
    assert all(subnet.prefixlen <= SMALLEST_AWS_SUBNET_PREFIX for subnet in ranges)
    for index, subnet in enumerate(ranges):
        assert not any(subnet.overlaps(other) for other in ranges[index + 1 :]), subnet
    # AND each zone has one private and one public subnet
    private_zones = [subnet.inputs["availabilityZone"] for subnet in private]
    public_zones = [subnet.inputs["availabilityZone"] for subnet in public]
    assert len(set(private_zones)) == zones
    assert public_zones == private_zones


@pytest.mark.parametrize("zones", sorted(SUBNETS_OF_EXISTING_NETWORKS))
def test_networks_of_up_to_four_zones_keep_the_subnets_they_were_created_with(
    created_network_run: Callable[[int, str], ProgramRun], zones: int
) -> None:
    # GIVEN a created 10.40.0.0/16 over two to four zones WHEN the program runs
    run = created_network_run(zones, WIDEST)
    # THEN its subnets are the ones such a network has always had: nothing is replaced
    expected_private, expected_public = SUBNETS_OF_EXISTING_NETWORKS[zones]
    assert _cidrs(_subnets(run, PRIVATE_ROLE)) == expected_private
    assert _cidrs(_subnets(run, PUBLIC_ROLE)) == expected_public


def test_the_prod_stacks_created_network_keeps_its_subnets(program_runs: dict[str, ProgramRun]):
    # GIVEN the prod stack file, whose analytics member creates 10.40.0.0/16 over the default
    # three zones WHEN the program runs
    run = program_runs["prod"]
    # THEN its subnets are exactly those it was created with
    expected_private, expected_public = SUBNETS_OF_EXISTING_NETWORKS[3]
    assert _cidrs(_subnets(run, PRIVATE_ROLE)) == expected_private
    assert _cidrs(_subnets(run, PUBLIC_ROLE)) == expected_public


def _accepted(cidr: str, zones: int) -> bool:
    try:
        CreatedNetwork.model_validate({"create": True, "cidr": cidr, "availability_zones": zones})
    except ValidationError:
        return False
    return True


def test_every_range_and_zone_count_the_settings_accept_leaves_subnets_aws_can_create() -> None:
    # GIVEN every created network the settings accept, among prefixes /8 to /30 and 1 to 12 zones
    accepted = [
        (f"10.40.0.0/{prefix}", zones)
        for prefix in range(8, 31)
        for zones in range(1, 13)
        if _accepted(f"10.40.0.0/{prefix}", zones)
    ]
    assert ("10.40.0.0/24", 6) in accepted
    for cidr, zones in accepted:
        # WHEN its range is cut into subnets
        private, public = subnet_ranges(cidr, zones)
        # THEN each zone has its two subnets, all distinct and none smaller than AWS's smallest
        assert (len(private), len(public)) == (zones, zones), (cidr, zones)
        assert len(set(private + public)) == 2 * zones, (cidr, zones)
        assert all(s.prefixlen <= SMALLEST_AWS_SUBNET_PREFIX for s in private + public), cidr


def test_the_settings_accept_exactly_the_readmes_ranges_and_zone_counts() -> None:
    # GIVEN created networks of prefixes /8 to /30 over 1 to 12 zones
    tried = [(prefix, zones) for prefix in range(8, 31) for zones in range(1, 13)]
    # WHEN each is validated
    accepted = [(p, z) for p, z in tried if _accepted(f"10.40.0.0/{p}", z)]
    # THEN exactly the README's are accepted: a /16 to /24 range over 2 to 6 zones
    assert accepted == [(prefix, zones) for prefix in range(16, 25) for zones in range(2, 7)]


def test_more_zones_than_the_region_offers_fail_naming_the_field(
    tmp_path: Path,
) -> None:
    # GIVEN a member in a region the mocks list three zones for, creating its network over five
    config = copy.deepcopy(read_stack_file(REPO_ROOT / "Pulumi.dev.yaml"))
    member = config["lambda-fleet:members"][0]
    member["regions"] = ["eu-west-1"]
    member["network"] = {"create": True, "cidr": WIDEST, "availability_zones": 5}
    _write_project(tmp_path, config)
    # WHEN the program runs
    with pytest.raises(ProgramFailedError) as raised:
        run_program("dev", tmp_path)
    # THEN it fails naming the field and the region's zones, instead of putting two subnet pairs
    # in one zone
    assert (
        "Pulumi.dev.yaml: members[0].network.availability_zones: 5 zones asked for, but eu-west-1 "
        "offers 3 (eu-west-1a, eu-west-1b, eu-west-1c)"
    ) in str(raised.value)


def test_a_new_zone_count_moves_the_subnets_in_place_so_the_count_is_set_once() -> None:
    # GIVEN a network created over 2 zones
    private_two, public_two = subnet_ranges("10.40.0.0/16", 2)
    # WHEN its stack file asks for 3
    private_three, public_three = subnet_ranges("10.40.0.0/16", 3)
    # THEN the first zones keep their private subnets, but their public ones move, and the new
    # private subnet takes a range a public subnet still holds: AWS refuses overlapping subnets,
    # which is why the README says the count is set once
    assert private_three[:2] == private_two
    assert public_three[:2] != public_two
    assert private_three[2] == public_two[0]


def test_a_created_network_reaches_the_internet_through_one_nat_gateway_in_a_public_subnet(
    program_runs: dict[str, ProgramRun],
) -> None:
    # GIVEN the prod stack, whose analytics member creates its network over three zones
    run = program_runs["prod"]
    by_urn = {resource.urn: resource for resource in run.resources}

    def depended_on(resource: RegisteredResource, resource_type: str) -> list[RegisteredResource]:
        return [by_urn[urn] for urn in resource.depends_on if by_urn[urn].type == resource_type]

    def route_table_of(subnet: RegisteredResource) -> RegisteredResource:
        [association] = [
            association
            for association in run.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
            if subnet.urn in association.depends_on
        ]
        [table] = depended_on(association, "aws:ec2/routeTable:RouteTable")
        return table

    # WHEN its NAT gateways are read, and the route table of each of its subnets
    [nat] = run.of_type(NAT_GATEWAY)
    private = {route_table_of(subnet).urn for subnet in _subnets(run, PRIVATE_ROLE)}
    public = {route_table_of(subnet).urn for subnet in _subnets(run, PUBLIC_ROLE)}
    # THEN there is one NAT gateway (docs/architecture.md; priced once in docs/costs.md), in one
    # of the public subnets
    assert [subnet.name for subnet in depended_on(nat, SUBNET)] == [
        _subnets(run, PUBLIC_ROLE)[0].name
    ]
    # AND the private subnets share one route table, which sends the internet through it, and
    # the public ones another, which sends it to the internet gateway
    [private_table], [public_table] = private, public
    assert [route["cidrBlock"] for route in by_urn[private_table].inputs["routes"]] == ["0.0.0.0/0"]
    assert depended_on(by_urn[private_table], NAT_GATEWAY) == [nat]
    assert not depended_on(by_urn[private_table], INTERNET_GATEWAY)
    assert [route["cidrBlock"] for route in by_urn[public_table].inputs["routes"]] == ["0.0.0.0/0"]
    assert len(depended_on(by_urn[public_table], INTERNET_GATEWAY)) == 1
    assert not depended_on(by_urn[public_table], NAT_GATEWAY)
