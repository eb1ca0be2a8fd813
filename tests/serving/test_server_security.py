"""Security of qa.serving.app against hostile clients on loopback: the API key, Host and Origin
checks, the JSON content type, CORS only when configured, and slow or numerous clients."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import openai
import pytest
from server_helpers import HEADLINE, SECRET, SlowLLM, assert_error, build_index, user

from qa.answering.assistant import Assistant
from qa.core.config import ServerSettings, Settings
from qa.core.types import QAError
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread
from qa.serving.run import check_host, serve


@pytest.fixture(scope="module")
def url(assistant: Assistant) -> Iterator[str]:
    with serve_in_thread(create_app(assistant)) as base:
        yield base


@pytest.fixture(scope="module")
def auth_url(assistant: Assistant) -> Iterator[str]:
    with serve_in_thread(create_app(assistant, api_key=SECRET)) as base:
        yield base


@pytest.fixture(scope="module")
def fake_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_index(tmp_path_factory.mktemp("fake-index"), **{"embedding.model": "fake"})


# ----------------------------------------------------------------------------- auth


def test_auth_required_when_key_set(auth_url: str) -> None:
    assert_error(httpx.get(f"{auth_url}/v1/models"), 401)
    wrong = httpx.get(f"{auth_url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401)
    assert wrong.headers["www-authenticate"] == "Bearer"
    basic = httpx.get(f"{auth_url}/v1/models", headers={"Authorization": f"Basic {SECRET}"})
    assert_error(basic, 401)
    for path in ("/api/articles/001_b56badeed06a7e90",):
        assert_error(httpx.get(f"{auth_url}{path}"), 401)
    assert_error(httpx.post(f"{auth_url}/api/ask", json={"question": HEADLINE}), 401)
    ok = httpx.get(f"{auth_url}/v1/models", headers={"Authorization": f"Bearer {SECRET}"})
    assert ok.status_code == 200
    asked = httpx.post(
        f"{auth_url}/api/ask",
        json={"question": HEADLINE},
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=120,
    )
    assert asked.status_code == 200


def test_auth_leaves_page_and_health_open(auth_url: str) -> None:
    for path in ("/", "/static/app.js", "/static/app.css", "/healthz"):
        assert httpx.get(f"{auth_url}{path}").status_code == 200, path


def test_auth_with_openai_client(auth_url: str) -> None:
    bad = openai.OpenAI(base_url=f"{auth_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="qa", messages=user(HEADLINE))
    good = openai.OpenAI(base_url=f"{auth_url}/v1", api_key=SECRET, max_retries=0, timeout=120)
    response = good.chat.completions.create(model="qa", messages=user(HEADLINE))
    assert (response.choices[0].message.model_extra or {})["citations"]


def test_no_auth_when_key_unset(url: str) -> None:
    assert httpx.get(f"{url}/v1/models").status_code == 200


# ----------------------------------------------------------------------------- host guard


def test_serve_refuses_public_host_without_flag(fake_settings: Settings) -> None:
    with pytest.raises(QAError, match="--public"):
        serve(fake_settings, "0.0.0.0", 0, allow_public=False)
    with pytest.raises(QAError, match="--public"):
        check_host("192.168.1.10", allow_public=False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_host(host, allow_public=False)
    check_host("0.0.0.0", allow_public=True)


# ----------------------------------------------------------------------------- Host, Origin, type

ASK_RAW = b'{"question": "What did Khrenin say about India?"}'


def test_cross_site_post_is_refused(url: str) -> None:
    """What any web page can send without asking: a text/plain POST from its own origin."""
    response = httpx.post(
        f"{url}/api/ask",
        content=ASK_RAW,
        headers={"content-type": "text/plain", "origin": "http://evil.example"},
    )
    error = assert_error(response, 403)
    assert "cross-site" in error["message"] and "evil.example" in error["message"]
    # Even with the JSON type (which a page could only send after a CORS preflight).
    response = httpx.post(
        f"{url}/api/ask", json={"question": HEADLINE}, headers={"origin": "http://evil.example"}
    )
    assert_error(response, 403)
    assert "access-control-allow-origin" not in response.headers
    for origin in ("null", "http://127.0.0.1.evil.example", url.replace("http:", "https:")):
        assert_error(httpx.get(f"{url}/v1/models", headers={"origin": origin}), 403)


def test_same_origin_requests_pass(url: str) -> None:
    response = httpx.post(
        f"{url}/api/ask", json={"question": HEADLINE}, headers={"origin": url}, timeout=120
    )
    assert response.status_code == 200, response.text
    assert httpx.get(f"{url}/v1/models", headers={"origin": url + "/"}).status_code == 200


def test_body_must_be_json(url: str) -> None:
    for kind in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": kind} if kind else {}
        response = httpx.post(f"{url}/api/ask", content=ASK_RAW, headers=headers)
        error = assert_error(response, 415)
        assert error["code"] == "unsupported_media_type"
        assert "application/json" in error["message"]
    ok = httpx.post(
        f"{url}/api/ask",
        content=ASK_RAW,
        headers={"content-type": "application/json; charset=utf-8"},
        timeout=120,
    )
    assert ok.status_code == 200, ok.text


def test_foreign_host_name_is_refused(url: str) -> None:
    """A DNS-rebinding page reaches the loopback server under its own name."""
    port = url.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.nip.io:{port}"):
        response = httpx.get(f"{url}/api/articles/001_b56badeed06a7e90", headers={"host": host})
        assert response.status_code == 400, host
        assert "Invalid host header" in response.text
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert httpx.get(f"{url}/healthz", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_and_cors_are_explicit_settings(fake_settings: Settings) -> None:
    server = replace(
        fake_settings.server,
        allowed_hosts=("qa.lan",),
        cors_origins=("http://app.example",),
    )
    assistant = Assistant(replace(fake_settings, server=server), llm=FakeLLM())
    with serve_in_thread(create_app(assistant)) as base:
        assert httpx.get(f"{base}/healthz", headers={"host": "qa.lan"}).status_code == 200
        assert httpx.get(f"{base}/healthz", headers={"host": "other.lan"}).status_code == 400
        preflight = httpx.options(
            f"{base}/api/ask",
            headers={
                "origin": "http://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        asked = httpx.post(
            f"{base}/api/ask",
            json={"question": HEADLINE},
            headers={"origin": "http://app.example"},
            timeout=60,
        )
        assert asked.status_code == 200, asked.text
        assert asked.headers["access-control-allow-origin"] == "http://app.example"
        other = {"origin": "http://evil.example"}
        assert_error(httpx.post(f"{base}/api/ask", json={"question": "x"}, headers=other), 403)


def test_bad_allowed_host_pattern_is_a_clear_error(fake_settings: Settings) -> None:
    server = replace(fake_settings.server, allowed_hosts=("qa.*.lan",))
    with pytest.raises(QAError, match=r"server\.allowed_hosts"):
        create_app(Assistant(replace(fake_settings, server=server), llm=FakeLLM()))


# ----------------------------------------------------------------------------- slow clients

LIMITS = ServerSettings(header_timeout=0.6, body_timeout=0.6, max_connections=50)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes ``sock`` within ``seconds`` (reading whatever it sends)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


@contextlib.contextmanager
def raw_server(
    settings: Settings, limits: ServerSettings, llm: FakeLLM | None = None
) -> Iterator[tuple[str, int]]:
    app = create_app(Assistant(settings, llm=llm or FakeLLM()))
    with serve_in_thread(app, limits=limits) as base:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


def test_half_sent_requests_are_closed(fake_settings: Settings) -> None:
    head = b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    body_head = head + b"Content-Length: 100\r\n\r\n" + b'{"question": '
    with raw_server(fake_settings, LIMITS) as address:
        started = time.monotonic()
        socks = [socket.create_connection(address) for _ in range(30)]
        for i, sock in enumerate(socks):
            sock.sendall([b"", head, body_head][i % 3])  # idle, half a head, half a body
        assert all(closed_within(s, 3.0) for s in socks)
        elapsed = time.monotonic() - started
        assert 0.5 < elapsed < 3.5, elapsed
        for sock in socks:
            sock.close()


def test_trickled_head_is_closed_at_the_deadline(fake_settings: Settings) -> None:
    """Each byte resets uvicorn's own keep-alive timer; the head deadline does not move."""
    with raw_server(fake_settings, LIMITS) as address, socket.create_connection(address) as sock:
        started = time.monotonic()
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if closed_within(sock, 0.1):
                closed = True
                break
        assert closed and time.monotonic() - started < 2.0


def test_kept_alive_connection_gets_a_new_head_deadline(fake_settings: Settings) -> None:
    with raw_server(fake_settings, LIMITS) as address, socket.create_connection(address) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half of the next one
        assert closed_within(sock, 3.0)


def test_deadlines_do_not_cut_a_slow_answer(fake_settings: Settings) -> None:
    """Once the request is in, nothing is timed: a 1.5 s model call outlives the 0.6 s limits."""
    with raw_server(fake_settings, LIMITS, llm=SlowLLM()) as (host, port):
        response = httpx.post(
            f"http://{host}:{port}/api/ask", json={"question": HEADLINE}, timeout=30
        )
        assert response.status_code == 200, response.text


def test_connection_cap(fake_settings: Settings) -> None:
    """Full of connections being answered, a new one is closed at once; full of connections
    still sending their heads, the oldest of those is closed to make room instead."""
    limits = ServerSettings(header_timeout=10, body_timeout=10, max_connections=4)
    ask = b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    body = b'{"question": "What did Khrenin say about India?"}'
    ask += b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with raw_server(fake_settings, limits, llm=SlowLLM()) as address:
        busy = [socket.create_connection(address) for _ in range(4)]
        for sock in busy:
            sock.sendall(ask)  # 1.5 s each to answer
        time.sleep(0.3)
        extra = socket.create_connection(address)
        assert closed_within(extra, 1.0)  # closed at once, long before the head deadline
        for sock in busy:
            sock.close()
        extra.close()
        time.sleep(0.3)
        held = [socket.create_connection(address) for _ in range(4)]
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # half a head, held
            time.sleep(0.05)
        with socket.create_connection(address) as again:
            again.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            again.settimeout(5)
            assert again.recv(65536).startswith(b"HTTP/1.1 200")
        assert closed_within(held[0], 1.0)  # the oldest half-sent head made room
        assert not any(closed_within(s, 0.1) for s in held[1:])
        for sock in held:
            sock.close()


def test_one_address_holds_few_half_sent_requests(fake_settings: Settings) -> None:
    """Past server.max_waiting_per_client connections of one address still sending their
    request, its oldest are closed, well before the head deadline."""
    limits = ServerSettings(header_timeout=10, max_connections=50, max_waiting_per_client=5)
    with raw_server(fake_settings, limits) as address:
        socks = []
        for _ in range(12):
            socks.append(socket.create_connection(address))
            socks[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(0.05)
        assert all(closed_within(s, 2.0) for s in socks[:7])
        assert not any(closed_within(s, 0.1) for s in socks[7:])
        for sock in socks:
            sock.close()


HALF_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a"


def hold_half_heads(address: tuple[str, int], count: int, stop: threading.Event) -> None:
    """Keep ``count`` connections open with half-sent heads until ``stop``, reopening each
    one the server closes (the attack of issue 22)."""
    socks = [socket.create_connection(address) for _ in range(count)]
    for sock in socks:
        sock.sendall(HALF_HEAD)
    while not stop.wait(0.5):
        readable, _, _ = select.select(socks, [], [], 0)
        for sock in readable:  # readable with nothing sent to it: closed by the server
            sock.close()
            socks[socks.index(sock)] = again = socket.create_connection(address)
            with contextlib.suppress(OSError):
                again.sendall(HALF_HEAD)
    for sock in socks:
        sock.close()


def test_slow_heads_do_not_shut_out_other_clients(fake_settings: Settings) -> None:
    """Issue 22: with 300 half-sent heads held open for 30 s, /healthz answered 1 of 27. Here
    a client asking every half second meanwhile gets every answer (default limits)."""
    with raw_server(fake_settings, ServerSettings()) as (host, port):
        stop = threading.Event()
        attack = threading.Thread(target=hold_half_heads, args=((host, port), 300, stop))
        attack.start()
        failures: list[str] = []
        asked = 0
        try:
            time.sleep(1.0)
            ends = time.monotonic() + 30
            while time.monotonic() < ends:
                asked += 1
                try:
                    got = httpx.post(
                        f"http://{host}:{port}/api/ask", json={"question": HEADLINE}, timeout=5
                    )
                    if got.status_code != 200:
                        failures.append(f"HTTP {got.status_code}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                time.sleep(0.5)
        finally:
            stop.set()
            attack.join()
        assert asked >= 20 and failures == [], (asked, failures)
