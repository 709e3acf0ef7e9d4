"""SSRF: outbound requests reach only vetted addresses, hop by hop, and DNS answers are pinned."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from projects.core import netguard
from projects.core.netguard import OutboundFetchError, OutboundURLRefused, check_outbound_url, safe_fetch


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, headers, body = self.routes.get(self.path, (404, {}, b"nope"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_server(settings):
    """A server on 127.0.0.1 reachable as ``localhost`` only: the allow-list names the host, so a
    redirect to the bare IP 127.0.0.1 (or anything else internal) is still refused."""
    _Handler.routes, _Handler.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    base = f"http://localhost:{server.server_port}"
    yield base, _Handler
    server.shutdown()
    server.server_close()


def test_fetches_an_allowed_url(fake_server):
    base, handler = fake_server
    handler.routes["/ok"] = (200, {"Content-Type": "application/json"}, b'{"a": 1}')
    response = safe_fetch(f"{base}/ok")
    assert response.status == 200 and response.json() == {"a": 1}


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::1]:{port}/secret",
        "http://10.1.2.3/",
        "file:///etc/passwd",
        "gopher://localhost:{port}/",
    ],
)
def test_redirect_to_an_internal_address_is_refused(fake_server, target):
    base, handler = fake_server
    port = base.rsplit(":", 1)[1]
    handler.routes["/go"] = (302, {"Location": target.format(port=port)}, b"")
    handler.routes["/secret"] = (200, {}, b"internal data")
    with pytest.raises(OutboundURLRefused):
        safe_fetch(f"{base}/go")
    assert [path for _, path, _, _ in handler.seen] == ["/go"]  # the internal target was never asked


def test_redirect_chain_within_allowed_hosts_is_followed_and_bounded(fake_server):
    base, handler = fake_server
    handler.routes["/a"] = (301, {"Location": "/b"}, b"")
    handler.routes["/b"] = (307, {"Location": f"{base}/c"}, b"")
    handler.routes["/c"] = (200, {}, b"done")
    assert safe_fetch(f"{base}/a").body == b"done"
    handler.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(OutboundFetchError, match="redirects"):
        safe_fetch(f"{base}/loop", max_redirects=3)
    assert sum(1 for _, p, _, _ in handler.seen if p == "/loop") == 4


def test_post_303_becomes_get_without_body(fake_server):
    base, handler = fake_server
    handler.routes["/submit"] = (303, {"Location": "/result"}, b"")
    handler.routes["/result"] = (200, {}, b"ok")
    safe_fetch(f"{base}/submit", method="POST", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
    method, path, _, body = handler.seen[-1]
    assert (method, path, body) == ("GET", "/result", b"")


def test_credentials_are_not_forwarded_to_another_origin(fake_server, settings):
    base, handler = fake_server
    other = base.replace("localhost", "LOCALHOST")  # same server, but another origin by spelling
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    handler.routes["/hop"] = (302, {"Location": f"{other}/land"}, b"")
    handler.routes["/land"] = (200, {}, b"")
    safe_fetch(f"{base}/hop", headers={"Authorization": "Bearer s3cret"})
    first, second = handler.seen
    assert first[2].get("Authorization") == "Bearer s3cret"
    assert "Authorization" not in second[2]


def test_oversized_answer_is_refused(fake_server):
    base, handler = fake_server
    handler.routes["/big"] = (200, {}, b"x" * 5000)
    with pytest.raises(OutboundFetchError, match="more than"):
        safe_fetch(f"{base}/big", max_bytes=1000)


def test_dns_rebinding_cannot_move_the_connection(monkeypatch):
    """The name resolves to a public address when vetted and to 127.0.0.1 afterwards: the
    connection still goes to the vetted public address, never to the rebound one."""
    answers = iter([["93.184.215.14"], ["127.0.0.1"], ["127.0.0.1"]])

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in next(answers)]

    connected = []

    def fake_create_connection(address, timeout=None, source_address=None):
        connected.append(address[0])
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(netguard.socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(netguard.socket, "create_connection", fake_create_connection)
    with pytest.raises(OutboundFetchError):
        safe_fetch("http://rebind.example/")
    assert connected == ["93.184.215.14"]


def test_a_name_with_any_internal_address_is_refused(monkeypatch):
    """A name answering both a public and an internal address is refused as a whole."""

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("93.184.215.14", "169.254.169.254")]

    monkeypatch.setattr(netguard.socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(OutboundURLRefused, match="169.254.169.254"):
        check_outbound_url("http://mixed.example/")


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00::1]/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://localhost./",
    ],
)
def test_odd_spellings_of_internal_addresses_are_refused(url):
    with pytest.raises(OutboundURLRefused):
        check_outbound_url(url)
