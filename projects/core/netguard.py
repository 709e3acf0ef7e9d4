"""Outbound HTTP guard: the one place that decides whether the server may call a URL.

Remote labelers, webhooks and URL imports call ``check_outbound_url`` before connecting. Only
http(s) URLs are allowed, and hosts resolving to loopback, private, link-local (cloud metadata
such as 169.254.169.254), multicast or reserved addresses are refused unless the address is
listed in ``OUTBOUND_ALLOWED_HOSTS`` (for a model server on the same machine, say). The check
resolves the name and returns the addresses it vetted, so callers can connect to exactly those
(no second lookup for DNS rebinding to exploit), and redirects must be re-checked hop by hop.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

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
