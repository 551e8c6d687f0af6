"""What every test process shares.

- How the test files are shared between pytest-xdist's two workers (pyproject's addopts:
  `-n 2 --dist loadfile`): the files of `FIRST`, each a long test, are started before all
  others. xdist hands out files with the most tests first, so a one-test file would start last
  and leave the other worker idle for the whole of its run.
- One botocore loader for every botocore session of the process, as a function's container has
  (`fleet_shared.sessions`). moto replaces boto3's default session in every test, and each new
  session parsed again every service model it touched (EC2's alone takes 0.3 s): more than half
  of the set-up time of a handler test.
- What botocore works out afresh for every session and client though it depends on nothing of
  theirs (`_botocore_work_done_once`): each session's ~130 builtin handlers had their signatures
  inspected and their event names matched against botocore's aliases, and each client built a
  service model and an operation model for each of its service's operations (EC2's ~750). A
  session and its client cost ~45 ms, most of it that. What a session or client owns (its event
  handlers, its class, its credentials, its endpoint) is still its own.
- OpenBLAS on one thread, as the program deploys the functions with numpy
  (`components/function_wiring.py`): set before numpy is imported.
- No test leaves a moto mock running: moto wipes its accounts only when its last mock stops, so
  one left running made every later test of the process see the earlier tests' resources.
- moto's reset leaves no account behind (`_reset_every_backend_it_used`).
- One RSA key signs every SNS message moto delivers in the process, as one certificate signs
  SNS's messages in a region: moto made a 2,048-bit key for each subscription (about 60 ms of
  CPU, two or three per test with an alert inbox); no test checks a signature.
- moto's SQS queues count their messages with one clock reading per count, not one per message
  (`_messages_seen_at_one_instant`): moto counts them on every send and on every message received,
  so an inbox of a few hundred alerts cost a test millions of clock readings.
- moto's SSM reads a GetParametersByPath page from the parameters up to that page's end, not
  all of them, and without filters only the page's own (`_parameters_up_to_the_page`): moto read
  every parameter under the path, and its tags, for each page, so reading n parameters ten at a
  time cost n²/10 parameter reads (the report fetch over moto's global infrastructure, ~1,100
  pages, most of a second each).
- A local server (a webhook or endpoint peer on 127.0.0.1, the demo's moto server) stops at
  once: socketserver's `serve_forever` looks for a `shutdown()` only every 0.5 s between
  requests, so each test with a peer waited up to half a second for it to stop (over 300 tests,
  most of the notification router's and the health monitor's).
- A moto server (the demo's, in its test process) lists moto's service packages once, not on
  every request (a directory listing and a `stat` of each of ~120 packages per request).
- The hypothesis profiles of the property tests (`tests/property`, and those that need moto
  beside their handler's tests). `lambda-fleet`, the default: the same examples on every run and
  machine (`derandomize`, no example database), no per-example deadline (two cores shared with
  other processes make timings noise), and few enough examples that the property tests stay
  seconds of the suite; a failure prints the blob that replays it with `@reproduce_failure`.
  `lambda-fleet-search` (`LAMBDA_FLEET_HYPOTHESIS=search`): fifty times the examples, for a hunt
  after a change to the code under test; still derandomized, so what it finds, it finds again.
- Python's cyclic garbage collector runs less often (`GC_THRESHOLDS`): each full collection
  went through all a test process holds (botocore's parsed service models, moto's backends),
  0.2-0.4 s each, every two to five tests with Python's thresholds: a fifth to a quarter of a
  handler test file's CPU. Garbage without cycles still goes at once; cycles wait longer (a
  process ran cleanup_manager's tests in ~380 MB instead of ~320 MB).
- A pytest-xdist worker ends without a collection (`pytest_sessionfinish`): once it reported its
  tests, execnet gives its session 5 s to end before it interrupts it with a SIGINT, and pytest's
  last `gc.collect()` went through everything the worker held (cycles pile up under
  `GC_THRESHOLDS`), more than 5 s on a loaded machine: the run ended with a `KeyboardInterrupt`
  "ignored in" hypothesis's gc callback. What the worker holds then is frozen, never collected:
  the process ends.
"""

from __future__ import annotations

import gc
import itertools
import os
import socketserver
import types
from collections.abc import Iterator
from functools import cache
from typing import Any

import botocore.client
import botocore.hooks
import botocore.loaders
import botocore.model
import botocore.session
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, settings
from moto import backends as moto_backends
from moto.core.base_backend import BackendDict
from moto.core.models import MockAWS
from moto.sns.models import Subscription
from moto.sqs import models as sqs_models
from moto.ssm.models import (
    PARAMETER_BY_PATH_MAX_RESULTS,
    Parameter,
    SimpleSystemManagerBackend,
)

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

GC_THRESHOLDS = (100_000, 50, 100)
"""Allocations before a young collection, young collections before a middle one, middle ones
before a full one (Python's are 700, 10, 10)."""
gc.set_threshold(*GC_THRESHOLDS)

settings.register_profile(
    "lambda-fleet",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    max_examples=100,
    suppress_health_check=(HealthCheck.too_slow,),
)
settings.register_profile(
    "lambda-fleet-search", settings.get_profile("lambda-fleet"), max_examples=5000
)
settings.load_profile(
    "lambda-fleet-search"
    if os.environ.get("LAMBDA_FLEET_HYPOTHESIS") == "search"
    else "lambda-fleet"
)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        gc.disable()
        gc.freeze()


FIRST = (
    "tests/tools/test_demo_day.py",
    "tests/handlers/anomaly_detector/test_open_series_index.py",
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # noqa: PLC0415 - only under xdist

    class LongFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            for scope in reversed(FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


@cache
def _process_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    return botocore.loaders.create_loader(search_path_string)


botocore.session.create_loader = _process_loader  # type: ignore[assignment]


def _botocore_work_done_once() -> None:
    """botocore's session and client set-up, with what depends only on its arguments done once per
    process.

    - Whether a handler takes `**kwargs` (`accepts_kwargs`, an `inspect` of its signature), per
      function: a bound method's is its function's.
    - The event name an event is registered or emitted under, for the emitters with botocore's
      own aliases (every session's): a dict of every name seen, shared instead of one per emitter.
    - A client's service model, per service and loaded model (the loader is the process's), and
      the API methods of its class, made from it: the class itself is made for each client, from a
      copy of those methods, so a `creating-client-class` handler still adds to that client's
      class only.
    """
    inspected_kwargs: dict[Any, bool] = {}
    accepts_kwargs = botocore.hooks.accepts_kwargs

    def accepts_kwargs_once(func: Any) -> bool:
        function = getattr(func, "__func__", func)
        if not isinstance(function, types.FunctionType):
            return bool(accepts_kwargs(func))
        if function not in inspected_kwargs:
            inspected_kwargs[function] = bool(accepts_kwargs(function))
        return inspected_kwargs[function]

    botocore.hooks.accepts_kwargs = accepts_kwargs_once

    aliased_names: dict[str, str] = {}
    aliaser_init = botocore.hooks.EventAliaser.__init__

    def aliaser_sharing_names(self: Any, event_emitter: Any, event_aliases: Any = None) -> None:
        aliaser_init(self, event_emitter, event_aliases)
        if self._event_aliases == botocore.hooks.EVENT_ALIASES:
            self._alias_name_cache = aliased_names

    botocore.hooks.EventAliaser.__init__ = aliaser_sharing_names  # type: ignore[method-assign]

    service_models: dict[tuple[str, int], tuple[Any, botocore.model.ServiceModel]] = {}
    creator = botocore.client.ClientCreator
    load_service_model = creator._load_service_model
    create_methods = creator._create_methods
    methods_by_model: dict[int, tuple[botocore.model.ServiceModel, dict[str, Any]]] = {}

    def service_model_once(
        self: botocore.client.ClientCreator, service_name: str, api_version: str | None = None
    ) -> botocore.model.ServiceModel:
        loaded = self._loader.load_service_model(service_name, "service-2", api_version)
        key = (service_name, id(loaded))
        if key not in service_models:
            service_models[key] = (loaded, load_service_model(self, service_name, api_version))
        return service_models[key][1]

    def methods_once(
        self: botocore.client.ClientCreator, service_model: botocore.model.ServiceModel
    ) -> dict[str, Any]:
        if id(service_model) not in methods_by_model:
            methods_by_model[id(service_model)] = (
                service_model,
                create_methods(self, service_model),
            )
        return dict(methods_by_model[id(service_model)][1])

    creator._load_service_model = service_model_once  # type: ignore[method-assign]
    creator._create_methods = methods_once  # type: ignore[method-assign]


_botocore_work_done_once()


_moto_reset = BackendDict.reset.__func__  # type: ignore[attr-defined]


def _reset_every_backend_it_used(cls: type[BackendDict]) -> None:
    """moto's reset (when a mock starts or stops), then every service's accounts dropped again.

    moto resets the services in the order they were first used and empties each at once; a
    service reset after EC2 whose backend holds EC2's (Auto Scaling) builds a new EC2 account as
    it resets, which moto then no longer tracks, so the next reset leaves it too. It was built
    with the ending test's environment: after a test without MOTO_EC2_LOAD_DEFAULT_AMIS=false,
    member A's region held moto's 1,284 public AMI snapshots into a later test of the process,
    and cleanup_manager's first run marked 1,286 snapshots instead of 2.
    """
    used = list(BackendDict._instances)  # type: ignore[misc]
    _moto_reset(cls)
    for backend in used:
        backend.clear()


BackendDict.reset = classmethod(_reset_every_backend_it_used)  # type: ignore[method-assign,assignment]


@cache
def _sns_signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _process_sns_signing_key(_subscription: Subscription) -> rsa.RSAPrivateKey:
    return _sns_signing_key()


Subscription.private_key = _process_sns_signing_key  # type: ignore[method-assign,assignment]


def _messages_seen_at_one_instant() -> None:
    """moto's `Queue.messages` and message counts, with the time read once for the whole queue.

    moto reads the time once for each message's `visible` and `delayed`, and counts the queue
    (three times, in its attributes) on every SendMessage and on every message it receives: a
    queue of n messages cost n clock readings, each a few microseconds, per count. Same
    comparisons, one reading.
    """
    queue = sqs_models.Queue

    def now() -> float:
        return sqs_models.unix_time_millis()

    def visible(message: sqs_models.Message, at: float) -> bool:
        return at > message.visible_at

    def delayed(message: sqs_models.Message, at: float) -> bool:
        return at < message.delayed_until

    def messages(self: sqs_models.Queue) -> list[sqs_models.Message]:
        at = now()
        return [m for m in self._messages if visible(m, at) and not delayed(m, at)]

    def not_visible(self: sqs_models.Queue) -> int:
        at = now()
        return sum(1 for m in self._messages if not visible(m, at))

    def delayed_count(self: sqs_models.Queue) -> int:
        at = now()
        return sum(1 for m in self._messages if delayed(m, at))

    queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[method-assign,assignment]
    queue.approximate_number_of_messages_delayed = property(delayed_count)  # type: ignore[method-assign,assignment]


_messages_seen_at_one_instant()


def _parameters_up_to_the_page(
    self: SimpleSystemManagerBackend,
    path: str,
    recursive: bool,
    filters: list[dict[str, Any]] | None = None,
    *,
    next_token: str | None = None,
    max_results: int = 10,
) -> tuple[list[Parameter], str | None]:
    """moto's `get_parameters_by_path`, which reads the parameters under `path` only up to the
    end of the page asked for: the page and its token are made of those alone. Without filters
    every parameter matches, so of those only the page's own are read, not every one before it
    with its tags (n²/20 reads to list n parameters ten at a time)."""
    if max_results > PARAMETER_BY_PATH_MAX_RESULTS:  # moto refuses it
        return _moto_parameters_by_path(
            self, path, recursive, filters, next_token=next_token, max_results=max_results
        )
    self._validate_parameter_filters(filters, by_path=True)
    page_end = int(next_token or "0") + int(max_results)
    prefix = path.rstrip("/") + "/"
    names = self._parameters.get_keys_beginning_with(prefix, recursive)
    if not filters:
        listed = list(itertools.islice(names, page_end))
        page, token = self._get_values_nexttoken(listed, max_results, next_token)  # type: ignore[arg-type]
        return [self.get_parameter(name) for name in page], token  # type: ignore[arg-type]
    result: list[Parameter] = []
    for name in names:
        parameter = self.get_parameter(name)
        if self._match_filters(parameter, filters):
            result.append(parameter)
            if len(result) == page_end:
                break
    return self._get_values_nexttoken(result, max_results, next_token)


_moto_parameters_by_path = SimpleSystemManagerBackend.get_parameters_by_path
SimpleSystemManagerBackend.get_parameters_by_path = _parameters_up_to_the_page  # type: ignore[method-assign]

SHUTDOWN_POLL_SECONDS = 0.01
"""How often a local server's loop looks for its shutdown (socketserver's default is 0.5 s)."""

_serve_forever = socketserver.BaseServer.serve_forever


def _serve_until_shut_down_at_once(
    self: socketserver.BaseServer, poll_interval: float = SHUTDOWN_POLL_SECONDS
) -> None:
    """socketserver's loop, looking for its shutdown every SHUTDOWN_POLL_SECONDS whatever the
    caller asked (werkzeug's server, moto's, asks for 0.5 s)."""
    _serve_forever(self, min(poll_interval, SHUTDOWN_POLL_SECONDS))


socketserver.BaseServer.serve_forever = _serve_until_shut_down_at_once  # type: ignore[method-assign]

_MOTO_MODULES = tuple(moto_backends.list_of_moto_modules())
moto_backends.list_of_moto_modules = lambda: _MOTO_MODULES


@pytest.fixture(autouse=True)
def moto_mocks_end_with_their_test() -> Iterator[None]:
    """Fails a test that left more moto mocks running than it found (a module's own mock, started
    before the test, is allowed)."""
    running_before = MockAWS._nested_count
    yield
    left_running = MockAWS._nested_count - running_before
    if left_running > 0:
        pytest.fail(f"the test left {left_running} moto mock(s) running", pytrace=False)
