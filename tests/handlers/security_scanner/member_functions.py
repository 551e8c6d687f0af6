"""Lambda functions of member A with aliases and published versions, each version with a
resource policy of its own, as in AWS (moto keeps one policy per function, which its versions
would otherwise share)."""

from __future__ import annotations

import json
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.awslambda.policy import Policy

from tests.handlers.member_accounts import MEMBER_A, REGION, member_session


def member_a_functions() -> tuple[Any, str]:
    """Member A's Lambda client, and a role its functions can be created with."""
    session = member_session(MEMBER_A)
    role = session.client("iam").create_role(
        RoleName="fn",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    return session.client("lambda"), role


def function_with_alias(functions: Any, role: str, name: str, *aliases: str) -> None:
    """A python3.12 function, one published version and `aliases` of it, the version with a
    resource policy of its own, as in AWS (moto keeps one policy per function, which an alias
    or version would otherwise share with the unqualified function)."""
    functions.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    version = functions.publish_version(FunctionName=name)["Version"]
    [published] = lambda_backends[MEMBER_A][REGION]._lambdas._functions[name]["versions"]
    published.policy = Policy(published)
    for alias in aliases:
        functions.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)


def published_versions(functions: Any, name: str, count: int) -> None:
    """Publish `count` more versions of function `name`, each with a resource policy of its own
    (moto publishes only after a change, and would share the function's policy)."""
    backend = lambda_backends[MEMBER_A][REGION]._lambdas._functions[name]
    for _ in range(count):
        backend["latest"].code_or_config_updated = True
        functions.publish_version(FunctionName=name)
        backend["versions"][-1].policy = Policy(backend["versions"][-1])
