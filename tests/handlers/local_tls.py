"""A certificate authority of the tests' own, standing in for a corporate CA (a TLS-inspecting
egress proxy's): its certificate as a CA bundle file, and a server certificate it signed for the
local peers (127.0.0.1, and `INSPECTED_HOST` as a proxy's tunnel names it).

Keys are P-256: made in microseconds, where an RSA key takes tens of milliseconds."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

INSPECTED_HOST = "endpoint.test"
"""A host the server certificate names beside 127.0.0.1: reserved (RFC 2606), so a client that
tried to reach it itself, not through its proxy, reaches nothing."""


@dataclass(frozen=True)
class LocalAuthority:
    """The CA's certificate in `bundle` (a PEM file), and the files of the server certificate
    it signed and its key."""

    bundle: Path
    server_certificate: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        """A server's TLS context presenting the certificate the CA signed."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_certificate, self.server_key)
        return context


def local_authority(directory: Path) -> LocalAuthority:
    """A new CA and its server certificate, written to `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lambda-fleet tests CA")])
    ca_certificate = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    server_certificate = (
        _builder(server_name, ca_name, server_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName(INSPECTED_HOST),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    authority = LocalAuthority(
        directory / "corporate-ca.pem", directory / "server.pem", directory / "server-key.pem"
    )
    authority.bundle.write_bytes(ca_certificate.public_bytes(serialization.Encoding.PEM))
    authority.server_certificate.write_bytes(
        server_certificate.public_bytes(serialization.Encoding.PEM)
    )
    authority.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return authority


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    """A certificate valid from an hour ago for a day, with its subject key identifier (strict
    verification, Python 3.13's default, wants both identifiers)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key), critical=False)
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
