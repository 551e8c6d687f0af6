"""`bounded_http.bound_whole_answers` refuses, when the client is made, the TLS and proxy
settings it cannot send with as botocore would, rather than send with others. (That it sends
with those it takes: tests/handlers/notification_router/test_hostile_peers.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from fleet_shared.bounded_http import SenderSettingsError, bound_whole_answers

REGION = "eu-west-1"


def _https_proxy(_: Path) -> Any:
    return boto3.client(
        "sns",
        region_name=REGION,
        config=Config(proxies={"https": "https://t:s3cret@proxy.test:3128"}),
    )


def _unreadable_ca_bundle(directory: Path) -> Any:
    return boto3.client("sns", region_name=REGION, verify=str(directory / "corporate-ca.pem"))


def _unreadable_client_certificate(directory: Path) -> Any:
    return boto3.client(
        "sns", region_name=REGION, config=Config(client_cert=str(directory / "client.pem"))
    )


def _another_sender(_: Path) -> Any:
    client = boto3.client("sns", region_name=REGION)
    client._endpoint.http_session = object()
    return client


REFUSED = {
    "https-proxy": (_https_proxy, "its proxy 'https://***:***@proxy.test:3128' is not an http://"),
    "unreadable-ca-bundle": (_unreadable_ca_bundle, "CA bundle '/"),
    "unreadable-client-certificate": (_unreadable_client_certificate, "client certificate '/"),
    "another-sender": (_another_sender, "its sender is object, not botocore's URLLib3Session"),
}
"""By test id: a client with settings the sender cannot take, and what the refusal says."""


@pytest.mark.parametrize(("client", "problem"), REFUSED.values(), ids=REFUSED.keys())
def test_a_client_whose_tls_or_proxy_settings_cannot_be_kept_is_refused_when_bound(
    tmp_path: Path, client: Callable[[Path], Any], problem: str
) -> None:
    # GIVEN a client botocore would send through an https:// proxy, check with a CA bundle or
    # present a client certificate that cannot be read, or send otherwise than it knows
    unbound = client(tmp_path)
    sender = unbound._endpoint.http_session
    # WHEN its answers are to be bounded as a whole
    with pytest.raises(SenderSettingsError) as refusal:
        bound_whole_answers(unbound)
    # THEN it is refused, naming the setting (a proxy's credentials masked), and the client
    # keeps botocore's sender: nothing sends with settings other than botocore's, or unchecked
    assert problem in str(refusal.value)
    assert "s3cret" not in str(refusal.value)
    assert unbound._endpoint.http_session is sender
