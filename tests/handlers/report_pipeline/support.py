"""Helpers shared by the report pipeline tests: S3 events, documents, a feed server, fake SSM.

Imported as `tests.handlers.report_pipeline.support` (never the conftest modules).
"""

from __future__ import annotations

import gzip
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import moto.ssm
from botocore.exceptions import ClientError

from fleet_shared.timestamps import iso_z
from tests.handlers.faults import InjectedFault, InjectedHang

REGION = "ap-south-1"
BUCKET = "lambda-fleet-data"
EXAMPLE_EVENT = Path(__file__).parents[3] / "events/report_processor/raw_object_created.json"
MOTO_SSM_RESOURCES = Path(moto.ssm.__file__).parent / "resources"


def s3_event(
    bucket: str, key: str, etag: str, size: int = 2, version_id: str | None = None
) -> dict[str, Any]:
    """The ObjectCreated notification S3 sends for `key`: the example event of report_processor
    with this bucket, key (URL-encoded as S3 does), ETag, size (2 bytes: `{}`) and, for a
    versioned bucket, the version id."""
    event: dict[str, Any] = json.loads(EXAMPLE_EVENT.read_text())
    message = event["Records"][0]["s3"]
    message["bucket"] |= {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    message["object"] |= {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag.strip('"')}
    if version_id is not None:
        message["object"]["versionId"] = version_id
    return event


def event_for(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The event the write of `key` would send, with the object's real ETag, size and (in a
    versioned bucket) version id: the event of the version `key` holds now."""
    head = s3.head_object(Bucket=bucket, Key=key)
    return s3_event(bucket, key, head["ETag"], head["ContentLength"], head.get("VersionId"))


def create_bucket(s3: Any, bucket: str = BUCKET) -> None:
    """The data bucket in the test region."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})


def raw_document(
    run_id: str,
    regions: dict[str, tuple[str | None, str]],
    services: dict[str, tuple[str | None, list[str]]],
    *,
    started_at: datetime,
) -> dict[str, Any]:
    """A hand-made raw document: region code -> (long name, partition), service code ->
    (long name, regions); the metadata counts are computed so that it validates."""
    pairs = sum(len(offered) for _, offered in services.values())
    moment = iso_z(started_at)
    return {
        "schema_version": 1,
        "metadata": {
            "run_id": run_id,
            "started_at": moment,
            "finished_at": (started_at + timedelta(seconds=5)).isoformat(),
            "counts": {
                "regions": len(regions),
                "services": len(services),
                "pairs": pairs,
                "launch_dates": 0,
            },
            "ssm": {
                "parameter_root": "/aws/service/global-infrastructure",
                "region": REGION,
                "fetched_at": moment,
                "fingerprint": "0" * 64,
                "from_cache": False,
                "api_calls": 1,
            },
            "feed": {"url": "http://127.0.0.1:1/feed", "status": "unreachable", "items": 0},
            "warnings": [],
        },
        "regions": [
            {
                "code": code,
                "long_name": name,
                "partition": partition,
                "geolocation_country": "IN",
                "geolocation_region": "IN-MH",
                "availability_zones": [f"{code}-az1", f"{code}-az2"],
                "launch_date": None,
            }
            for code, (name, partition) in regions.items()
        ],
        "services": [
            {"code": code, "long_name": name, "marketing_url": None, "regions": offered}
            for code, (name, offered) in services.items()
        ],
    }


def put_json(s3: Any, key: str, document: Any, bucket: str = BUCKET) -> dict[str, Any]:
    """Write `document` as JSON and return the event that write sends."""
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode("utf-8"))
    return event_for(s3, bucket, key)


def keys_under(s3: Any, prefix: str, bucket: str = BUCKET) -> list[str]:
    """Every key under `prefix`, sorted."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def rss(items: list[tuple[str, str]]) -> bytes:
    """An RSS 2.0 document with (title, RFC 822 date) items."""
    entries = "".join(
        f"<item><title>{title}</title><description>d</description><pubDate>{published}</pubDate>"
        "</item>"
        for title, published in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>What\'s New</title>'
        f"{entries}</channel></rss>"
    ).encode()


class FeedServer:
    """An RSS feed on 127.0.0.1 with an ETag: answers 304 to a matching If-None-Match."""

    ETAG = '"feed-v1"'

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                if self.headers.get("If-None-Match") == FeedServer.ETAG:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", FeedServer.ETAG)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/feed"

    @contextmanager
    def running(self) -> Iterator[FeedServer]:
        """Serve in a thread for the duration of the block."""
        thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join()


def unreachable_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed"


class FakeSsm:
    """GetParametersByPath / GetParameters over a dict, with SSM's pagination (10 per page,
    NextToken) and non-recursive listing; counts calls and can fail every call."""

    def __init__(self, parameters: dict[str, str], fail: bool = False) -> None:
        self.parameters = parameters
        self.fail = fail
        self.calls = 0
        self._lock = threading.Lock()
        # Path -> the names directly under it, sorted: a listing never scans every parameter.
        children: dict[str, list[str]] = {}
        for name in sorted(parameters):
            children.setdefault(name.rsplit("/", 1)[0] + "/", []).append(name)
        self._children = children

    def _count(self) -> None:
        with self._lock:
            self.calls += 1
        if self.fail:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "GetParameters"
            )

    def get_parameters_by_path(self, **request: Any) -> dict[str, Any]:
        """Non-recursive listing, one page per call."""
        self._count()
        assert not request["Recursive"] and request["MaxResults"] <= 10
        names = self._children.get(request["Path"].rstrip("/") + "/", [])
        size = request["MaxResults"]
        start = int(request.get("NextToken") or 0)
        page = names[start : start + size]
        response: dict[str, Any] = {
            "Parameters": [{"Name": name, "Value": self.parameters[name]} for name in page]
        }
        if start + size < len(names):
            response["NextToken"] = str(start + size)
        return response

    def get_parameters(self, **request: Any) -> dict[str, Any]:
        """The named parameters that exist; the others as InvalidParameters."""
        self._count()
        names = request["Names"]
        assert len(names) <= 10
        return {
            "Parameters": [
                {"Name": name, "Value": self.parameters[name]}
                for name in names
                if name in self.parameters
            ],
            "InvalidParameters": [name for name in names if name not in self.parameters],
        }


def ssm_parameters(
    regions: dict[str, tuple[str, str]], services: dict[str, tuple[str, list[str]]]
) -> dict[str, str]:
    """The global-infrastructure parameters of a small dataset, laid out as AWS does."""
    root = "/aws/service/global-infrastructure"
    parameters: dict[str, str] = {}
    for code, (name, partition) in regions.items():
        base = f"{root}/regions/{code}"
        parameters |= {
            base: code,
            f"{base}/longName": name,
            f"{base}/partition": partition,
            f"{base}/geolocationCountry": "IN",
            f"{base}/geolocationRegion": "IN-MH",
            f"{base}/domain": "amazonaws.com",
            f"{base}/availability-zones/{code}-az1": f"{code}-az1",
        }
    for code, (name, offered) in services.items():
        base = f"{root}/services/{code}"
        parameters |= {base: code, f"{base}/longName": name}
        for region in offered:
            endpoint = f"{code}.{region}.amazonaws.com"
            parameters[f"{base}/regions/{region}"] = region
            parameters[f"{base}/regions/{region}/endpoint"] = endpoint
            parameters[f"{root}/regions/{region}/services/{code}"] = code
            parameters[f"{root}/regions/{region}/services/{code}/endpoint"] = endpoint
    return parameters


def moto_global_infrastructure() -> dict[str, str]:
    """Every global-infrastructure parameter moto serves (about 54,000), name -> value."""
    parameters: dict[str, str] = {}

    def flatten(path: str, tree: dict[str, Any]) -> None:
        for key, child in tree.items():
            if key == "Value":
                parameters[path] = child
            else:
                flatten(f"{path}/{key}", child)

    for resource in ("regions.json.gz", "services.json.gz"):
        with gzip.open(MOTO_SSM_RESOURCES / resource) as document:
            flatten("", json.load(document))
    return parameters


class CompletionRecordHang(InjectedHang):
    """Holds the state-table write that records a request as completed (other writes, the
    request's claim included, go through), as a DynamoDB that stops answering once the work is
    done: the invocation is killed at its deadline after doing the work, before recording it."""

    def __call__(self, request: Any, **kwargs: Any) -> None:
        if b'"COMPLETED"' not in bytes(request.body or b""):
            return
        super().__call__(request, **kwargs)


class CompletionRecordFault(InjectedFault):
    """Fails every attempt of the state-table write that records a request as completed (other
    writes, the request's claim and locks included, go through) until healed."""

    def __call__(self, request: Any, **kwargs: Any) -> None:
        if b'"COMPLETED"' not in bytes(request.body or b""):
            return
        super().__call__(request, **kwargs)


def hang_completion_record(dynamodb: Any) -> CompletionRecordHang:
    """Make the first write of a completed request on `dynamodb` hang until released."""
    hang = CompletionRecordHang("PutItem")
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", hang)
    return hang


@dataclass
class CopyIntoHang(InjectedHang):
    """Holds the first copy whose target URL contains `url_part` (others go through)."""

    url_part: str = ""

    def __call__(self, request: Any, **kwargs: Any) -> None:
        if self.url_part not in request.url:
            return
        super().__call__(request, **kwargs)


def hang_first_copy_into(s3: Any, prefix: str) -> CopyIntoHang:
    """Make the first CopyObject into `prefix` on `s3` hang until released."""
    hang = CopyIntoHang("CopyObject", url_part=f"/{prefix}")
    s3.meta.events.register_first("before-send.s3.CopyObject", hang)
    return hang
