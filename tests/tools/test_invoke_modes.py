"""`fleetctl invoke` is safe by default: the demo's world unless told otherwise, fake credentials
for another endpoint, real AWS only when asked and only in the stack's hub account, and one line
for every mistake."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from moto import mock_aws

from fleet_shared.exceptions import ConfigurationError
from fleetctl import cli
from fleetctl.handler_environment import FAKE_CREDENTIALS, handler_environment
from fleetctl.invoke import InvokeError, InvokeOutcome, confirm_real_account
from fleetctl.invoke_runner import ReplayedClock, answer
from fleetctl.local_world import stack_settings
from fleetctl.mocked_program import REPO_ROOT

NO_SHELL_CREDENTIALS = {
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _fleetctl(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetctl", *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env=environment,
    )


def _shell_without_aws() -> dict[str, str]:
    shell = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    shell.update(NO_SHELL_CREDENTIALS)
    return shell


def _readme_invoke_example() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    examples = [block for block in blocks if "fleetctl invoke" in block]
    assert len(examples) == 1, "the README has one invoke example"
    return examples[0]


def test_the_readme_invoke_example_runs_verbatim_offline_against_the_demo_world(tmp_path):
    # GIVEN the README's example, and a shell with no AWS credentials or configuration
    example = _readme_invoke_example()
    started = time.time()
    # WHEN it runs as written
    completed = subprocess.run(
        ["bash", "-e", "-c", example],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        env=_shell_without_aws(),
        timeout=300,
    )
    # THEN the scaler answers from the seeded world: the stack's cluster, in the stack's region
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["cluster"] == "dev-apps"
    assert result["region"] == "ap-south-1"
    assert {target["nodegroup"] for target in result["results"]} == {"system", "batch-spot"}
    # AND the person is told where it ran and where the log is, with no traceback
    assert "against the demo's world on http://127.0.0.1:" in completed.stderr
    assert "Traceback" not in completed.stderr
    # AND the log is where the README says it goes: out/logs/<function>.log
    log = REPO_ROOT / "out" / "logs" / "eks_scaler.log"
    assert f"the function's log is in {log}\n" in completed.stderr
    assert log.stat().st_mtime >= started


def test_an_unreachable_endpoint_is_one_line_and_nothing_runs():
    completed = _fleetctl(
        "invoke",
        "eks_scaler",
        "--event",
        "events/eks_scaler/scale_up_schedule.json",
        "--endpoint-url",
        "http://127.0.0.1:9",
        environment=_shell_without_aws(),
    )
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("fleetctl: --endpoint-url http://127.0.0.1:9 is unreachable")


def test_real_aws_without_credentials_is_one_line():
    completed = _fleetctl(
        "invoke",
        "eks_scaler",
        "--event",
        "events/eks_scaler/scale_up_schedule.json",
        "--real-aws",
        environment=_shell_without_aws(),
    )
    assert completed.returncode == 2
    assert completed.stderr == "fleetctl: --real-aws: this shell has no AWS credentials\n"


def test_real_aws_refuses_an_account_that_is_not_the_stack_hub(monkeypatch):
    # GIVEN credentials of account 123456789012 (moto's default) and the dev stack's hub 1111...
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "shell-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shell-secret")
    with mock_aws(), pytest.raises(InvokeError) as refused:
        confirm_real_account(stack_settings("dev"), "dev")
    # THEN it names both accounts and invokes nothing
    assert "account 123456789012, not the dev stack's hub account 111111111111" in str(
        refused.value
    )


def test_real_aws_says_which_account_and_region_it_acts_in(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "shell-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "shell-secret")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    with mock_aws():
        said = confirm_real_account(stack_settings("dev"), "dev")
    assert said.startswith("acting in real AWS: account 111111111111 as arn:aws:")
    assert said.endswith("region ap-south-1")


def test_another_endpoint_gets_fake_credentials_never_the_shells(monkeypatch):
    # GIVEN a shell holding a profile, keys and endpoints of its own
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-REAL")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "real-token")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "https://sts.amazonaws.com")
    # WHEN the handler's environment is made for a local endpoint
    environment = handler_environment(
        {"STATE_TABLE_NAME": "t"},
        function="eks_scaler",
        region="ap-south-1",
        endpoint_url="http://127.0.0.1:5000",
        credentials=FAKE_CREDENTIALS,
    )
    # THEN only the fake keys, the stack's region and the endpoint are there
    aws = {name: value for name, value in environment.items() if name.startswith("AWS_")}
    assert aws == {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_REGION": "ap-south-1",
        "AWS_DEFAULT_REGION": "ap-south-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
    }
    assert environment["STATE_TABLE_NAME"] == "t"


@pytest.mark.parametrize("credentials", [None, FAKE_CREDENTIALS], ids=["real-aws", "endpoint"])
def test_a_variable_the_function_reads_is_the_plans_or_unset_never_the_shells(
    monkeypatch: pytest.MonkeyPatch, credentials: dict[str, str] | None
) -> None:
    # GIVEN a shell that exported variables the scaler reads, one the plan sets and one it
    # leaves at its default (the cooldown, at 0 from a local experiment), and one of its own
    monkeypatch.setenv("STATE_TABLE_NAME", "someone-elses-table")
    monkeypatch.setenv("SCALER_COOLDOWN_SECONDS", "0")
    monkeypatch.setenv("LANG", "C.UTF-8")
    # WHEN the scaler's environment is made from the plan's variables
    environment = handler_environment(
        {"STATE_TABLE_NAME": "lf-dev-state"},
        function="eks_scaler",
        region="ap-south-1",
        endpoint_url=None,
        credentials=credentials,
    )
    # THEN the plan's value stands, the default one is unset (the handler's default, 300 s, as
    # deployed), and the shell's own variables are kept
    assert environment["STATE_TABLE_NAME"] == "lf-dev-state"
    assert "SCALER_COOLDOWN_SECONDS" not in environment
    assert environment["LANG"] == "C.UTF-8"


def test_a_handler_that_raises_is_a_crash_answer_with_its_traceback_in_the_log(capsys):
    # GIVEN a function whose handler raises something that is not a refusal
    def lambda_handler(event, context):
        raise KeyError("cluster")

    def services():
        raise ConfigurationError("STATE_TABLE_NAME", "is required")

    function = SimpleNamespace(services=services)
    module = SimpleNamespace(FUNCTION=function, lambda_handler=lambda_handler)
    # WHEN the runner answers an invocation
    reply = answer(module, ReplayedClock(), {"event": {}}, None)
    # THEN the answer is the crash in one line and the traceback went to the log (stderr)
    assert reply == {"crash": "KeyError: 'cluster'"}
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        ("KeyError: 'cluster'", "KeyError: 'cluster'"),
        # An S3 key may hold a line break; printed as is it would forge a second line.
        (
            "NoSuchKey: reports/a\nfleetctl: all clear\r",
            "NoSuchKey: reports/a\\x0afleetctl: all clear\\x0d",
        ),
    ],
)
def test_a_crash_is_reported_in_one_line_pointing_to_the_log(
    monkeypatch, capsys, tmp_path, raised, shown
):
    # GIVEN an invocation whose handler crashed with this exception text
    crash = f"eks_scaler raised {raised}; traceback in {tmp_path}/eks_scaler.log"
    monkeypatch.setattr(cli, "invoke", lambda *args, **kwargs: InvokeOutcome(None, crash=crash))
    event = tmp_path / "event.json"
    event.write_text("{}")
    # WHEN fleetctl reports it
    status = cli.main(["invoke", "eks_scaler", "--event", str(event)])
    captured = capsys.readouterr()
    # THEN it is one line, control characters escaped, naming the log
    assert status == 1
    assert (
        captured.err
        == f"fleetctl: eks_scaler raised {shown}; traceback in {tmp_path}/eks_scaler.log\n"
    )
    assert captured.out == ""


def test_an_error_result_is_printed_and_exits_1(monkeypatch, capsys, tmp_path):
    # GIVEN a handler that answers with an error result (a refusal, not a crash)
    refusal = {"status": "error", "error": "cluster: unknown cluster 'nope'"}
    monkeypatch.setattr(cli, "invoke", lambda *args, **kwargs: InvokeOutcome(refusal))
    event = tmp_path / "event.json"
    event.write_text("{}")
    # WHEN it is invoked
    status = cli.main(["invoke", "eks_scaler", "--event", str(event), "--log", str(tmp_path / "x")])
    # THEN the result is printed as JSON and the exit status says it is an error
    assert status == 1
    assert json.loads(capsys.readouterr().out) == refusal
