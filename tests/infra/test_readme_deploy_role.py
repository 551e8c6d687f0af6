"""The README's list of services the deploy role must manage is the services the plans create
(README, Roles): a deploy role built from a shorter list fails `pulumi up` with AccessDenied."""

from __future__ import annotations

import re

from fleetctl.mocked_program import REPO_ROOT, ProgramRun

DEPLOY_ROLE_SENTENCE = re.compile(
    r"The deploy role needs permissions to manage what the program creates in that account "
    r"\(([^)]*)\)\."
)

# The README's names of services -> the pulumi-aws modules (`aws:<module>/...`) they cover.
# pulumi-aws keeps EventBridge's bus, rules and targets, and CloudWatch Logs, under `cloudwatch`.
README_SERVICE_MODULES = {
    "EKS": {"eks"},
    "EC2/VPC": {"ec2"},
    "IAM": {"iam"},
    "KMS": {"kms"},
    "S3": {"s3"},
    "DynamoDB": {"dynamodb"},
    "Lambda": {"lambda"},
    "SNS": {"sns"},
    "SQS": {"sqs"},
    "EventBridge and Scheduler": {"cloudwatch", "scheduler"},
    "CloudWatch": {"cloudwatch"},
    "API Gateway": {"apigatewayv2"},
    "Athena": {"athena"},
}

# Multi-language components run in their own provider, so the mocks record the component and
# not the AWS resources it creates: pulumi-eks's Cluster creates the EKS cluster, its access
# entries and add-ons, its security group (EC2) and its service role and OIDC provider (IAM).
COMPONENT_PACKAGE_MODULES = {"eks": {"eks", "ec2", "iam"}}
# Packages whose resources are no AWS resource: the engine's own and the program's components.
NOT_AWS_PACKAGES = ("pulumi", "lambda-fleet")


def _readme_deploy_role_services() -> list[str]:
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    match = DEPLOY_ROLE_SENTENCE.search(readme)
    assert match, "README no longer says which services the deploy role needs"
    return [name.strip() for name in match.group(1).split(",")]


def _aws_modules_registered(run: ProgramRun) -> dict[str, str]:
    """Each AWS module the run creates resources of, with one resource type that needs it."""
    modules: dict[str, str] = {}
    for resource in run.resources:
        package = resource.type.split(":", 1)[0]
        if package == "aws":
            modules.setdefault(resource.type.split(":")[1].split("/")[0], resource.type)
        elif package in COMPONENT_PACKAGE_MODULES:
            for module in COMPONENT_PACKAGE_MODULES[package]:
                modules.setdefault(module, resource.type)
        else:
            assert package in NOT_AWS_PACKAGES, f"which AWS services does {resource.type} use?"
    return modules


def test_readme_names_exactly_the_aws_services_the_dev_and_prod_plans_create(
    program_runs: dict[str, ProgramRun],
):
    # GIVEN the services the README says the deploy role must manage, as pulumi-aws modules
    names = _readme_deploy_role_services()
    unknown = sorted(set(names) - set(README_SERVICE_MODULES))
    assert not unknown, f"add the README's {unknown} to README_SERVICE_MODULES"
    named = {module for name in names for module in README_SERVICE_MODULES[name]}
    # WHEN the dev and prod programs run and every registered resource type is read
    created: dict[str, str] = {}
    for stack, run in program_runs.items():
        for module, type_token in _aws_modules_registered(run).items():
            created.setdefault(module, f"{type_token} ({stack})")
    # THEN every service the plans create resources of is named, so the deploy role may create
    # them, and every service named is one the plans use
    missing = {module: created[module] for module in sorted(set(created) - named)}
    assert not missing, f"README's deploy role list leaves out: {missing}"
    unused = [name for name in names if not README_SERVICE_MODULES[name] <= set(created)]
    assert not unused, f"README's deploy role list names services no plan uses: {unused}"
