"""Outbound HTTP guard: the one place that decides whether the server may call a URL.

Remote labelers, webhooks and URL imports call ``check_outbound_url`` before connecting. Only
http(s) URLs are allowed, and hosts resolving to loopback, private, link-local (cloud metadata
such as 169.254.169.254), multicast or reserved addresses are refused unless the address is
listed in ``OUTBOUND_ALLOWED_HOSTS`` (for a model server on the same machine, say). The check
resolves the name and returns the addresses it vetted, so callers can connect to exactly those
(no second lookup for DNS rebinding to exploit), and redirects must be re-checked hop by hop.
``safe_fetch`` does all of that for one request; prefer it to calling an HTTP client directly.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings

from projects.core.exceptions import ValidationFailed


class OutboundURLRefused(ValidationFailed):
    code = "url_refused"


def _allowed_hosts() -> set[str]:
    return {h.lower() for h in getattr(settings, "OUTBOUND_ALLOWED_HOSTS", [])}


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (address.is_multicast or address.is_reserved)


def check_outbound_url(url: str) -> list[str]:
    """Return the vetted IP addresses for ``url`` or raise ``OutboundURLRefused``."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise OutboundURLRefused(f"Not a valid URL: {url!r}.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundURLRefused("Only http:// and https:// URLs with a host are allowed.")
    if parts.username or parts.password:
        raise OutboundURLRefused("URLs with credentials in them are not allowed; use a header instead.")
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise OutboundURLRefused(f"Invalid port in {url!r}.") from exc
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundURLRefused(f"Cannot resolve host {host!r}.") from exc
    addresses = sorted({info[4][0] for info in infos})
    allowed = _allowed_hosts()
    if host in allowed:
        return addresses
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%")[0])
        if raw not in allowed and not _is_public(address):
            raise OutboundURLRefused(
                f"{host} resolves to {raw}, an internal address. An administrator can allow it with "
                "OUTBOUND_ALLOWED_HOSTS."
            )
    return addresses


# --- safe_fetch: one outbound request, vetted hop by hop -----------------------------------------

REDIRECT_CODES = {301, 302, 303, 307, 308}


class OutboundFetchError(ValidationFailed):
    """The remote end could not be reached or answered too much; ``message`` says why."""

    code = "fetch_failed"


@dataclass(frozen=True)
class FetchResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str  # the URL that answered, after redirects

    def json(self) -> Any:
        return json.loads(self.body)


def _pinned_connection(parts, address: str, timeout: float) -> http.client.HTTPConnection:
    """A connection to ``parts.hostname`` that connects to the vetted ``address`` only.

    The Host header, TLS SNI and certificate check still use the name, so HTTPS works as usual;
    only the DNS lookup is replaced, so a name that re-resolves to 127.0.0.1 a moment after it was
    vetted (DNS rebinding) cannot redirect the connection.
    """
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)

    def connect_to_vetted(_address, timeout=None, source_address=None):
        return socket.create_connection((address, port), timeout, source_address)

    conn._create_connection = connect_to_vetted
    return conn


def safe_fetch(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
    max_redirects: int = 3,
    max_bytes: int = 10 * 1024 * 1024,
) -> FetchResponse:
    """Make one HTTP request the SSRF-safe way and return the final answer.

    Every hop (the URL and each redirect target) goes through ``check_outbound_url`` and the
    connection goes to the address that check vetted. A redirect to another origin drops the
    ``Authorization`` and ``Cookie`` headers; 303 (and 301/302 after a POST) turn into a GET.
    Raises ``OutboundURLRefused`` for a refused hop, ``OutboundFetchError`` for network errors,
    too many redirects or an answer larger than ``max_bytes``. Any status code is returned as is.
    """
    headers = dict(headers or {})
    headers.setdefault("User-Agent", "Annotator/1")
    for _hop in range(max_redirects + 1):
        addresses = check_outbound_url(url)
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn = _pinned_connection(parts, addresses[0], timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(max_bytes + 1)
            status, answer_headers = response.status, {k.lower(): v for k, v in response.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            raise OutboundFetchError(f"Cannot reach {parts.hostname}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if len(data) > max_bytes:
            raise OutboundFetchError(f"{parts.hostname} answered more than {max_bytes} bytes.")
        location = answer_headers.get("location")
        if status not in REDIRECT_CODES or not location:
            return FetchResponse(status=status, headers=answer_headers, body=data, url=url)
        next_url = urljoin(url, location)
        next_parts = urlsplit(next_url)
        if (next_parts.scheme, next_parts.netloc) != (parts.scheme, parts.netloc):
            headers = {k: v for k, v in headers.items() if k.lower() not in ("authorization", "cookie")}
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        url = next_url
    raise OutboundFetchError(f"More than {max_redirects} redirects.")
