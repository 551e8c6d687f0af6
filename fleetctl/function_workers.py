"""Warm worker processes, one per function, each with the environment the stack gives it.

A worker is what a Lambda execution environment is to a function: one process, started once,
that imports the handler once and then answers invocation after invocation. The demo replays a
day through them, so each invocation costs the handler's work, not another interpreter start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from catalog import function_spec
from fleetctl.exceptions import FleetctlError
from fleetctl.mocked_program import REPO_ROOT


class WorkerCrashedError(FleetctlError):
    """The handler raised, or its process ended; the worker's log has the traceback."""


class WorkerStoppedError(WorkerCrashedError):
    """The worker's process ended (it could not import the handler, or it was killed): unlike a
    handler that raised, it answers no further invocation."""


class FunctionWorker:
    def __init__(self, function: str, environment: dict[str, str], log_path: Path) -> None:
        spec = function_spec(function)
        self.function = function
        self.log_path = log_path
        self._log: IO[str] = log_path.open("a")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fleetctl.invoke_runner",
                f"handlers.{function}.app",
                environment.get("POWERTOOLS_SERVICE_NAME", function),
                str(spec.timeout_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=REPO_ROOT,
            env=environment,
        )

    def invoke(self, event: Any, now: datetime | None = None) -> Any:
        """The handler's result for `event`, invoked at `now` (the machine's clock without)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request = {"event": event, "now": now.astimezone(UTC).isoformat() if now else None}
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise WorkerStoppedError(f"{self.function} stopped; see {self.log_path}") from None
        line = self._process.stdout.readline()
        if not line:
            raise WorkerStoppedError(f"{self.function} stopped; see {self.log_path}")
        answer = json.loads(line)
        if "crash" in answer:
            raise WorkerCrashedError(
                f"{self.function} raised {answer['crash']}; traceback in {self.log_path}"
            )
        return answer["result"]

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()


class WorkerPool:
    """Starts a function's worker on first use; closes every worker on exit, even on failure."""

    def __init__(self, environments: dict[str, dict[str, str]], log_dir: Path) -> None:
        self._environments = environments
        self._log_dir = log_dir
        self._workers: dict[str, FunctionWorker] = {}

    def invoke(self, function: str, event: Any, now: datetime | None = None) -> Any:
        if function not in self._workers:
            self._workers[function] = FunctionWorker(
                function, self._environments[function], self._log_dir / f"{function}.log"
            )
        try:
            return self._workers[function].invoke(event, now)
        except WorkerStoppedError:
            # Like Lambda after a crash: the next invocation gets a new environment. A handler
            # that raised keeps its warm one, as in Lambda.
            self._workers.pop(function).close()
            raise

    def __enter__(self) -> WorkerPool:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
