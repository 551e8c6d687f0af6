"""Accounts and providers: one provider per (account, region), pinned, tagged, always explicit."""

from __future__ import annotations

import json

import pytest

from components.settings import load_settings
from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import REPO_ROOT, ProgramRun, read_stack_file, run_program

AWS_PROVIDER = "pulumi:providers:aws"


def _expected_pairs(run: ProgramRun, stack_settings_document) -> dict[tuple[str, str], str]:
    settings = load_settings(run.stack, stack_settings_document(run.stack))
    pairs = {(settings.hub.account_id, settings.hub.region): settings.hub.deploy_role_arn}
    for member in settings.members:
        for region in member.regions:
            pairs[(member.account_id, region)] = member.deploy_role_arn
    return pairs


def test_one_provider_per_account_and_region(stack_run: ProgramRun, stack_settings_document):
    # GIVEN a stack's settings WHEN the program runs
    expected = _expected_pairs(stack_run, stack_settings_document)
    providers = stack_run.of_type(AWS_PROVIDER)
    # THEN there is exactly one AWS provider for each (account, region)
    placed = [(p.placement.account_id, p.placement.region) for p in providers]
    assert sorted(placed) == sorted(expected)


def test_each_provider_assumes_its_accounts_deploy_role_and_allows_only_that_account(
    stack_run: ProgramRun, stack_settings_document
):
    expected = _expected_pairs(stack_run, stack_settings_document)
    for provider in stack_run.of_type(AWS_PROVIDER):
        account, region = provider.placement.account_id, provider.placement.region
        assert json.loads(provider.inputs["allowedAccountIds"]) == [account]
        roles = json.loads(provider.inputs["assumeRoles"])
        assert [role["roleArn"] for role in roles] == [expected[(account, region)]]
        assert roles[0]["sessionName"] == f"lambda-fleet-{stack_run.stack}"
        assert provider.inputs["region"] == region


def test_providers_tag_everything_with_project_stack_account_and_manager(stack_run: ProgramRun):
    for provider in stack_run.of_type(AWS_PROVIDER):
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        assert tags["project"] == "lambda-fleet"
        assert tags["stack"] == stack_run.stack
        assert tags["managed-by"] == "pulumi"
        assert tags["account"] in provider.name
        assert tags["cost-center"] == "platform"


def test_every_aws_resource_has_an_explicit_provider(stack_run: ProgramRun):
    for resource in stack_run.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider, resource.name
            assert stack_run.provider_of(resource).type == AWS_PROVIDER


def test_stack_files_disable_default_providers():
    for stack in ("dev", "prod"):
        assert read_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml")[
            "pulumi:disable-default-providers"
        ] == ["*"]


def test_a_resource_without_a_provider_fails_the_offline_plan(tmp_path):
    # GIVEN a program that forgets the provider, in a stack that disables default providers
    (tmp_path / "__main__.py").write_text(
        "import pulumi_aws as aws\naws.s3.Bucket('forgot-provider')\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(
        'config:\n  pulumi:disable-default-providers: ["*"]\n'
    )
    # WHEN it runs THEN it fails naming the resource, as the engine would
    with pytest.raises(ProgramFailedError, match=r"'forgot-provider'.*no explicit provider"):
        run_program("dev", tmp_path)


def test_network_comes_from_the_stack_reference_named_per_region(program_runs):
    run = program_runs["dev"]
    references = run.of_type("pulumi:pulumi:StackReference")
    assert [reference.inputs["name"] for reference in references] == ["acme/network/dev-ap-south-1"]
    network = run.stack_outputs["networks"]["222222222222/ap-south-1"]
    reference_outputs = references[0].outputs["outputs"]
    assert network["vpc_id"] == reference_outputs["vpcId"]
    assert network["private_subnet_ids"] == reference_outputs["privateSubnetIds"]


def test_a_member_in_two_regions_reads_one_stack_reference_per_region_with_the_region_filled_in(
    program_runs, stack_settings_document
):
    """GIVEN the prod stack, whose member `payments` is in ap-south-1 and eu-west-1 and names its
    network `acme/network/payments-{region}`
    WHEN the program runs
    THEN it reads one stack reference per region, named with that region, and each region's
    network is the one its own reference exports"""
    settings = load_settings("prod", stack_settings_document("prod"))
    (member,) = [member for member in settings.members if len(member.regions) == 2]
    assert member.network.stack_reference == "acme/network/payments-{region}"
    run = program_runs["prod"]
    references = run.of_type("pulumi:pulumi:StackReference")
    names = [reference.inputs["name"] for reference in references]
    assert sorted(name for name in names if "/payments-" in name) == [
        "acme/network/payments-ap-south-1",
        "acme/network/payments-eu-west-1",
    ]
    for region in member.regions:
        exported = run.stack_outputs["networks"][f"{member.account_id}/{region}"]
        (outputs,) = [
            reference.outputs["outputs"]
            for reference in references
            if reference.inputs["name"] == f"acme/network/payments-{region}"
        ]
        assert exported["vpc_id"] == outputs["vpcId"]
        assert exported["private_subnet_ids"] == outputs["privateSubnetIds"]


def test_a_network_read_under_custom_output_keys_comes_from_those_keys(project_with_stack):
    """GIVEN the dev stack file with its network stack's outputs named `sharedVpcId` and
    `appPrivateSubnets` instead of the defaults `vpcId` and `privateSubnetIds`
    WHEN the program runs against a referenced stack that exports only those two keys
    THEN the member's network is the VPC and subnets exported under them"""
    config = read_stack_file(REPO_ROOT / "Pulumi.dev.yaml")
    config["lambda-fleet:members"][0]["network"].update(
        vpc_id_output="sharedVpcId", private_subnet_ids_output="appPrivateSubnets"
    )
    run = run_program("custom-keys", project_with_stack("custom-keys", config))
    (reference,) = run.of_type("pulumi:pulumi:StackReference")
    outputs = reference.outputs["outputs"]
    assert sorted(outputs) == ["appPrivateSubnets", "sharedVpcId"]
    network = run.stack_outputs["networks"]["222222222222/ap-south-1"]
    assert network["vpc_id"] == outputs["sharedVpcId"]
    assert network["private_subnet_ids"] == outputs["appPrivateSubnets"]


def test_created_network_lives_in_the_member_account_with_private_subnets(program_runs):
    run = program_runs["prod"]
    vpcs = run.of_type("aws:ec2/vpc:Vpc")
    assert [(vpc.placement.account_id, vpc.inputs["cidrBlock"]) for vpc in vpcs] == [
        ("300000000003", "10.40.0.0/16")
    ]
    private = [
        subnet
        for subnet in run.of_type("aws:ec2/subnet:Subnet")
        if subnet.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1"
    ]
    assert len(private) == 3
    assert len({subnet.inputs["availabilityZone"] for subnet in private}) == 3
    exported = run.stack_outputs["networks"]["300000000003/eu-west-1"]["private_subnet_ids"]
    assert len(exported) == 3
    assert all(subnet_id.startswith("subnet-") for subnet_id in exported)
