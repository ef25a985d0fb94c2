"""The public internet as the tests see it: an HTTPS proxy on 127.0.0.1 that reaches the stand-ins.

Inference URLs are the clouds' real ones (`https://<endpoint>.<region>.inference.ml.azure.com/...`,
`https://modeldeployment.<region>.oci.customer-oci.com/...`). Nothing here rewrites them: the
test environment sets HTTPS_PROXY to this proxy and points the CA bundles (requests, curl,
OpenSSL) at a test authority, as a corporate proxy would. On CONNECT the proxy answers with a
certificate for the asked host, signed by that authority, and hands each request inside the
tunnel to the stand-in that registered the host. Any other host is refused, so nothing leaves
the machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.emulators.http import loopback_server

# (method, path, body, headers) -> (status, body, headers); headers' names are lowercased.
Route = Callable[[str, str, Any, dict[str, str]], tuple[int, Any, dict[str, str]]]


@dataclass(frozen=True)
class _Site:
    host: re.Pattern[str]
    route: Route
    reachable: Callable[[], bool] | None = None  # a private address: reached only while this says so


class Internet:
    """The proxy, its certificate authority, and the hosts the stand-ins serve."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="internet-")
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self._ca_key, self._ca_cert = _authority(self.ca_file)
        self._sites: list[_Site] = []
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._server, self.url = loopback_server(_handler(self))

    def stop(self) -> None:
        self._server.shutdown()
        self._dir.cleanup()

    def serve(self, host: str, route: Route, reachable: Callable[[], bool] | None = None) -> None:
        """Send requests for hosts matching the regular expression `host` to `route`; a host given
        `reachable` (an address inside a private network) has no route from here while it says False."""
        with self._lock:
            self._sites.append(_Site(re.compile(host), route, reachable))

    def environment(self) -> dict[str, str]:
        """What a process needs to reach the stand-ins' public hosts, and only those, over TLS."""
        ca = str(self.ca_file)
        return {
            "HTTPS_PROXY": self.url,
            "https_proxy": self.url,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": ca,
            "CURL_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
        }

    def route(self, host: str) -> Route | None:
        with self._lock:
            site = next((site for site in self._sites if site.host.fullmatch(host)), None)
        return site.route if site is not None and (site.reachable is None or site.reachable()) else None

    def context(self, host: str) -> ssl.SSLContext:
        """A server TLS context with a certificate for `host`, made once per host."""
        with self._lock:
            if host not in self._contexts:
                cert, key = _leaf(host, self._ca_key, self._ca_cert, Path(self._dir.name))
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(cert, key)
                self._contexts[host] = context
            return self._contexts[host]


def _handler(internet: Internet) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        tunnel_host: str | None = None

        def log_message(self, *_: object) -> None:
            return None

        def do_CONNECT(self) -> None:
            host = self.path.rsplit(":", 1)[0]
            if internet.route(host) is None:
                self.send_error(502, f"no route to {host} from the test machine")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            self.connection = internet.context(host).wrap_socket(self.connection, server_side=True)
            self.rfile = self.connection.makefile("rb", self.rbufsize)
            self.wfile = self.connection.makefile("wb", 0)
            self.tunnel_host = host
            self.close_connection = False

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            route = internet.route(self.tunnel_host or "") if self.tunnel_host else None
            if route is None and self.tunnel_host:  # a private address left behind (the caller's network changed): no route, no answer
                self.close_connection = True
                return
            if route is None:
                status, answer, headers = 502, {"message": "only HTTPS through CONNECT reaches the stand-ins"}, {}
            else:
                try:  # a file's bytes stay bytes, whatever they hold (a config.json uploaded to blob storage)
                    octets = self.headers.get("Content-Type", "").startswith("application/octet-stream")
                    body: Any = raw if octets else json.loads(raw) if raw.strip() else None
                except (UnicodeDecodeError, json.JSONDecodeError):
                    body = raw
                status, answer, headers = route(self.command, self.path, body, {k.lower(): v for k, v in self.headers.items()})
            data = answer if isinstance(answer, bytes) else b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            if not any(k.lower() == "content-type" for k in headers):
                self.send_header("Content-Type", "application/json")
            for key, value in headers.items():
                self.send_header(key, value)
            if self.command != "HEAD" or not any(k.lower() == "content-length" for k in headers):  # HEAD may say the length of what GET would send
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler


def _authority(path: Path) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llamadeploy test authority")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _leaf(host: str, ca_key: Any, ca_cert: Any, directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    stem = re.sub(r"[^A-Za-z0-9.-]", "_", host)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path
