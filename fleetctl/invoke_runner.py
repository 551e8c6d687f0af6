"""Runs one handler in this (fresh) process, laid out as Lambda lays it out.

Started by `fleetctl invoke` with the function's environment already set. Reads the event as JSON
from standard input, calls `lambda_handler(event, context)`, writes the result as JSON to
standard output; everything the handler logs goes to standard error.

Usage: python -m fleetctl.invoke_runner <handler module> <function name> <timeout seconds>
       python -m fleetctl.invoke_runner --serve <handler module> <function name> <timeout seconds>

With `--serve` the process stays warm like a Lambda execution environment: it reads one event
per line and answers each with one line `{"result": ...}` or `{"crash": "..."}` (the traceback
goes to standard error), until standard input closes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field


@dataclass
class LocalContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    invoked_function_arn: str = ""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def serve(module_name: str, function_name: str, timeout: str) -> int:
    answers = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        handler = importlib.import_module(module_name).lambda_handler
        for line in sys.stdin:
            context = LocalContext(function_name=function_name, timeout_seconds=int(timeout))
            try:
                answer: dict[str, object] = {"result": handler(json.loads(line), context)}
            except Exception as error:  # reported to the caller, as Lambda reports it
                traceback.print_exc()
                answer = {"crash": f"{type(error).__name__}: {error}"}
            answers.write(json.dumps(answer, default=str) + "\n")
            answers.flush()
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--serve":
        return serve(*argv[1:])
    module_name, function_name, timeout = argv
    event = json.load(sys.stdin)
    context = LocalContext(function_name=function_name, timeout_seconds=int(timeout))
    context.log_group_name = f"/aws/lambda/{function_name}"
    result_stream = sys.stdout
    # Handlers log to standard output (as Lambda captures it); keep it apart from the result.
    with contextlib.redirect_stdout(sys.stderr):
        handler = importlib.import_module(module_name).lambda_handler
        result = handler(event, context)
    json.dump(result, result_stream, indent=2, sort_keys=True, default=str)
    result_stream.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
