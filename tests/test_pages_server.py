import json
import urllib.error
import urllib.request

import pytest
from fixtures_browser import browser, console_errors  # noqa: F401 (fixture)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from pages.server import HttpError, Page, PageServer, Response

INDEX = """<!doctype html><title>t</title><p id="out">loading</p>
<script>
fetch("/api/echo?word=hi", {method: "POST", body: JSON.stringify({n: 2})})
  .then(r => r.json()).then(j => { document.getElementById("out").textContent = j.word + ":" + j.n; });
</script>"""


def _echo(request):
    return {"word": request.query.get("word"), "n": (request.body or {}).get("n")}


def _refuse(request):
    raise HttpError(409, "no more clips")


def _broken(request):
    raise RuntimeError("handler bug")


@pytest.fixture
def server(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text(INDEX)
    (static / "app.css").write_text("p {}")
    (tmp_path / "secret.txt").write_text("outside")
    routes = {("POST", "/api/echo"): _echo, ("GET", "/api/refuse"): _refuse, ("GET", "/api/broken"): _broken,
              ("GET", "/api/bytes"): lambda request: Response(b"\x89PNG", "image/png")}
    with PageServer(Page(static, routes)) as running:
        yield running


def _get(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_server_listens_on_loopback_only(server):
    """The server binds 127.0.0.1 and reports that address as its URL."""
    assert server.httpd.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_json_route_gets_query_and_body(server):
    """A POST route receives its query and parsed JSON body and answers JSON."""
    status, kind, body = _get(server.url + "api/echo?word=yes", data=json.dumps({"n": 3}).encode())
    assert (status, kind, json.loads(body)) == (200, "application/json", {"word": "yes", "n": 3})


def test_static_files_and_index(server):
    """/ serves index.html and other files come with their content type."""
    assert _get(server.url)[:2] == (200, "text/html")
    assert _get(server.url + "app.css")[:2] == (200, "text/css")


def test_static_path_cannot_leave_the_folder(server):
    """Encoded '..' and hidden names give 404, never a file outside the page's folder."""
    for path in ("..%2fsecret.txt", "%2e%2e/secret.txt", ".hidden", "a/../../secret.txt"):
        status, _, body = _get(server.url + path)
        assert status == 404 and b"outside" not in body, path


def test_handler_errors_are_json_and_the_server_goes_on(server):
    """HttpError keeps its status, a crashing handler is a 500, and the next request still works."""
    assert _get(server.url + "api/refuse")[0] == 409
    status, _, body = _get(server.url + "api/broken")
    assert status == 500 and "handler bug" in json.loads(body)["error"]
    assert _get(server.url + "api/bytes")[:3] == (200, "image/png", b"\x89PNG")


def test_bad_json_body_and_unknown_route(server):
    """A body that is not JSON is a 400; an unknown API path is a 404."""
    assert _get(server.url + "api/echo", data=b"{not json")[0] == 400
    assert _get(server.url + "api/nothing")[0] == 404


def test_foreign_host_header_is_refused(server):
    """A request naming another host (DNS rebinding) is refused."""
    assert _get(server.url + "api/refuse", headers={"Host": "evil.example:80"})[0] == 403


def test_page_runs_in_a_real_browser(server, browser):
    """Headless chromium loads the page, its script calls the API and shows the answer."""
    browser.get(server.url)
    WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "out").text == "hi:2")
    assert console_errors(browser) == []
