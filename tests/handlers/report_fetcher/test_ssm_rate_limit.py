"""The SSM rate limit: a token bucket shared by the worker threads, on every request and retry."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from moto import mock_aws

from fleet_shared.clock import ManualClock
from fleet_shared.environment import load_environment
from fleet_shared.exceptions import ConfigurationError
from handlers.report_fetcher import app
from handlers.report_fetcher.environment import FetcherEnvironment
from handlers.report_fetcher.fetch import FetcherServices
from handlers.report_fetcher.rate_limit import TokenBucket
from tests.handlers.faults import throttle_attempts
from tests.handlers.report_pipeline.support import BUCKET

ENVIRONMENT = {
    "DATA_BUCKET_NAME": BUCKET,
    "ALERT_TOPIC_ARN": "arn:aws:sns:ap-south-1:123456789012:alerts",
}


class FrozenTime:
    """A monotonic clock that moves only when told; `sleep` records, it does not wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


def _starts(bucket: TokenBucket, time: FrozenTime, calls: int, threads: int) -> list[float]:
    """When each of `calls` acquisitions, made at once from `threads` threads, may start."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        waits = list(pool.map(lambda _: bucket.acquire(), range(calls)))
    return sorted(time.now + wait for wait in waits)


def _most_in_any_second(starts: list[float]) -> int:
    return max(sum(1 for later in starts if start <= later < start + 1 - 1e-9) for start in starts)


def test_the_bucket_holds_the_rate_across_worker_threads() -> None:
    # GIVEN a bucket of 35 per second shared by 8 threads asking for 200 calls at once
    time = FrozenTime()
    bucket = TokenBucket(35, monotonic=time.monotonic, sleep=time.sleep)
    # WHEN they acquire
    starts = _starts(bucket, time, calls=200, threads=8)
    # THEN the calls are spaced 1/35 s apart: never more than 35 start in any second
    assert _most_in_any_second(starts) == 35
    assert starts[-1] == pytest.approx(199 / 35)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(1 / 35)
    assert len(time.slept) == 199


def test_an_idle_bucket_saves_up_no_burst() -> None:
    # GIVEN a bucket that has been idle for a minute after a first run of calls
    time = FrozenTime()
    bucket = TokenBucket(35, monotonic=time.monotonic, sleep=time.sleep)
    _starts(bucket, time, calls=10, threads=4)
    time.now += 60
    # WHEN 70 calls come at once THEN still at most 35 start in any second
    starts = _starts(bucket, time, calls=70, threads=8)
    assert starts[0] == time.now
    assert _most_in_any_second(starts) == 35


@pytest.mark.parametrize("value", ["0", "-3", "fast", "20000", "nan", "1e-9", "0.1", "4.9"])
def test_a_bad_rate_limit_is_refused_naming_the_variable(value: str) -> None:
    # GIVEN a rate limit that is not a number from 5 to 10,000: below 5 a fetch's ~1,100 calls
    # cannot end within the function's timeout, and far below, a worker waiting for its token
    # outlasts the invocation, which Lambda then ends with nothing reported
    # WHEN the environment is loaded THEN the variable is named
    with pytest.raises(ConfigurationError) as raised:
        load_environment(FetcherEnvironment, {**ENVIRONMENT, "REPORT_SSM_CALLS_PER_SECOND": value})
    assert raised.value.variable == "REPORT_SSM_CALLS_PER_SECOND"


class CountingBucket(TokenBucket):
    """A bucket that never binds (10,000 per second) and counts the tokens taken."""

    def __init__(self) -> None:
        super().__init__(10000)
        self.taken = 0

    def acquire(self) -> float:
        self.taken += 1
        return super().acquire()


def test_every_ssm_request_and_retry_takes_a_token_and_retries_are_adaptive(
    fake_clock: ManualClock, fleet_environment: dict[str, str]
) -> None:
    # GIVEN the fetcher's SSM client with a counting bucket, and SSM throttling the first attempt
    bucket = CountingBucket()

    class CountedServices(FetcherServices):
        @property
        def ssm_rate_limit(self) -> TokenBucket:
            return bucket

    services = CountedServices.create(
        app.FUNCTION.name, load_environment(FetcherEnvironment, ENVIRONMENT), clock=fake_clock
    )
    with mock_aws():
        throttled = throttle_attempts(services.ssm, "ssm", 1)
        # WHEN one GetParameters call is made
        response = services.ssm.get_parameters(
            Names=["/aws/service/global-infrastructure/regions/ap-south-1/longName"]
        )
    # THEN it succeeded on its second attempt, and both attempts took a token
    assert response["Parameters"][0]["Value"] == "Asia Pacific (Mumbai)"
    assert throttled.injected == 1
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert bucket.taken == 2
    # AND the client retries in botocore's adaptive mode
    assert services.ssm.meta.config.retries["mode"] == "adaptive"
