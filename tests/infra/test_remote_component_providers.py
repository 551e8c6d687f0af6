"""Multi-language components (pulumi-eks) under `disable-default-providers`, offline.

The engine refuses an `eks` component without an explicit `eks` provider, and the AWS resources
it creates would need the default `aws` provider, which the stack disables; the offline plan
must fail the same way instead of hiding either mistake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetctl.exceptions import ProgramFailedError
from fleetctl.mocked_program import run_program

STACK_FILE = 'config:\n  pulumi:disable-default-providers: ["*"]\n'

PROGRAM_HEAD = """
import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

aws_provider = aws.Provider("member", region="eu-west-1", allowed_account_ids=["222222222222"])
eks_provider = eks.Provider("eks")
"""


def _run(tmp_path: Path, cluster_options: str):
    (tmp_path / "__main__.py").write_text(
        PROGRAM_HEAD
        + "eks.Cluster('forgot', skip_default_node_group=True, "
        + f"opts=pulumi.ResourceOptions({cluster_options}))\n"
    )
    (tmp_path / "Pulumi.dev.yaml").write_text(STACK_FILE)
    return run_program("dev", tmp_path)


def test_an_eks_component_without_an_aws_provider_fails_the_offline_plan(tmp_path):
    # GIVEN an eks cluster that gets its own provider but no AWS provider for its children
    # WHEN the program runs offline THEN it fails naming the component and the aws package
    with pytest.raises(ProgramFailedError, match=r"'forgot'.*no provider for package 'aws'"):
        _run(tmp_path, "provider=eks_provider")


def test_an_eks_component_without_an_eks_provider_fails_the_offline_plan(tmp_path):
    # GIVEN an eks cluster with an AWS provider but no provider for the eks package itself
    # WHEN the program runs offline THEN it fails as the engine does
    with pytest.raises(ProgramFailedError, match=r"'forgot'.*no provider for package 'eks'"):
        _run(tmp_path, "providers={'aws': aws_provider}")


def test_an_eks_component_with_both_providers_is_placed_by_its_aws_provider(tmp_path):
    # GIVEN an eks cluster with the eks provider and the member's AWS provider
    run = _run(tmp_path, "provider=eks_provider, providers={'aws': aws_provider}")
    # WHEN it is registered THEN it lands in the AWS provider's account and region
    (cluster,) = run.of_type("eks:index:Cluster")
    assert (cluster.placement.account_id, cluster.placement.region) == (
        "222222222222",
        "eu-west-1",
    )
    # AND the eks provider itself belongs to no account
    (eks_provider,) = run.of_type("pulumi:providers:eks")
    assert eks_provider.placement is None
