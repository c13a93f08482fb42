"""Grafana provisioning against the in-process fake Grafana, and the fake's own fidelity."""

from __future__ import annotations

import contextlib
import html
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus, urlsplit

import pytest
import requests

from ese.grafana import api as grafana_api
from ese.grafana.api import GrafanaClient, GrafanaError, provision
from ese.paths import REPO_ROOT
from fake_grafana.server import FakeGrafanaServer
from tests.tooling import free_port

DATASOURCE = grafana_api.datasource_spec(
    json.loads((REPO_ROOT / "grafana" / "datasource.json").read_text(encoding="utf-8"))
)
DASHBOARD = json.loads((REPO_ROOT / "grafana" / "dashboard.json").read_text(encoding="utf-8"))
DS_INPUT = {
    "name": "DS_PROMETHEUS",
    "label": "Prometheus",
    "type": "datasource",
    "pluginId": "prometheus",
    "pluginName": "Prometheus",
}
PANEL = {
    "id": 1,
    "title": "pings",
    "datasource": "${DS_PROMETHEUS}",
    "targets": [{"expr": "rate(health_ping_count[1m])", "datasource": {"uid": "${DS_PROMETHEUS}"}}],
}
EXPORTED = {
    "__inputs": [DS_INPUT],
    "__requires": [{"type": "datasource", "id": "prometheus", "name": "Prometheus"}],
    "uid": "ese-original",
    "title": "ESE Server (original)",
    "panels": [PANEL],
}
NO_UID = {"title": "Hand made", "panels": [PANEL | {"datasource": "ese-prometheus"}]}


def client(server: FakeGrafanaServer, password: str = "s3cret") -> GrafanaClient:
    return GrafanaClient(server.url, "admin", password, timeout=5)


def call(server: FakeGrafanaServer, method: str, path: str, body=None, auth=True):
    """One raw API call to the fake, as another Grafana user (or a person) would make it."""
    resp = requests.request(
        method,
        server.url + path,
        json=body,
        auth=("admin", "s3cret") if auth else None,
        timeout=5,
    )
    return resp.status_code, resp.json()


def wire(gc: GrafanaClient) -> list[requests.PreparedRequest]:
    """Every request the client puts on the wire, in order (a response hook records it)."""
    log: list[requests.PreparedRequest] = []
    gc.session.hooks["response"].append(lambda resp, **_: log.append(resp.request))
    return log


def posted(request: requests.PreparedRequest) -> dict:
    return json.loads(request.body or b"null")


def test_first_run_creates_and_second_run_changes_nothing(grafana):
    first = provision(client(grafana), DATASOURCE, DASHBOARD, timeout=5)
    assert (first.datasource, first.dashboard) == ("created", "created")
    after_first = grafana.state.snapshot()
    ds = after_first["datasources"][DATASOURCE["uid"]]
    assert ds["url"] == "http://prometheus-server:9090" and ds["version"] == 1
    assert after_first["dashboards"][DASHBOARD["uid"]]["dashboard"]["title"] == "ESE Server"

    second = provision(client(grafana), DATASOURCE, DASHBOARD, timeout=5)
    assert (second.datasource, second.dashboard) == ("unchanged", "unchanged")
    assert grafana.state.snapshot() == after_first  # same versions, no write at all


def test_changed_definitions_are_updated_in_place(grafana):
    provision(client(grafana), DATASOURCE, DASHBOARD, timeout=5)
    moved = {**DATASOURCE, "url": "http://prometheus-server:9091"}
    retitled = {**DASHBOARD, "refresh": "10s"}
    report = provision(client(grafana), moved, retitled, timeout=5)
    assert (report.datasource, report.dashboard) == ("updated", "updated")
    state = grafana.state.snapshot()
    assert state["datasources"][DATASOURCE["uid"]]["version"] == 2
    assert state["dashboards"][DASHBOARD["uid"]]["dashboard"]["version"] == 2
    assert state["dashboards"][DASHBOARD["uid"]]["dashboard"]["refresh"] == "10s"


def test_name_conflict_409_takes_over_the_existing_datasource(grafana):
    status, _ = call(
        grafana,
        "POST",
        "/api/datasources",
        {
            "name": DATASOURCE["name"],
            "type": "prometheus",
            "url": "http://old:9090",
            "access": "proxy",
            "uid": "made-by-hand",
        },
    )
    assert status == 200
    assert client(grafana).ensure_datasource(DATASOURCE) == "updated"
    state = grafana.state.snapshot()["datasources"]
    assert list(state) == [DATASOURCE["uid"]]  # same datasource, now with the fixed uid
    assert state[DATASOURCE["uid"]]["url"] == DATASOURCE["url"]
    assert client(grafana).ensure_datasource(DATASOURCE) == "unchanged"


def test_exported_dashboard_with_inputs_is_imported_with_its_datasource_mapped(grafana):
    gc = client(grafana)
    assert gc.ensure_datasource(DATASOURCE) == "created"
    assert gc.ensure_dashboard(EXPORTED, DATASOURCE["uid"]) == "created"
    stored = grafana.state.snapshot()["dashboards"]["ese-original"]["dashboard"]
    assert "__inputs" not in stored
    assert stored["panels"][0]["datasource"] == DATASOURCE["uid"]
    assert stored["panels"][0]["targets"][0]["datasource"] == {"uid": DATASOURCE["uid"]}
    assert "${DS_PROMETHEUS}" not in json.dumps(stored)
    assert gc.ensure_dashboard(EXPORTED, DATASOURCE["uid"]) == "unchanged"
    assert grafana.state.snapshot()["dashboards"]["ese-original"]["dashboard"]["version"] == 1


def test_wrong_password_401_explains_the_first_start_password_and_the_reset(grafana):
    with pytest.raises(GrafanaError) as err:
        provision(client(grafana, password="from-a-new-env"), DATASOURCE, DASHBOARD, timeout=5)
    text = str(err.value)
    assert "401" in text and "'admin'" in text
    assert "keeps the admin password from its first start" in text
    assert "grafana cli admin reset-admin-password" in text
    assert "invoke down --volumes" in text
    assert "\n" not in text
    assert grafana.state.snapshot()["writes"] == []
    named = GrafanaClient(grafana.url, "admin", "nope", timeout=5, container="ese-backend-g-1")
    with pytest.raises(GrafanaError, match="during datasource lookup") as err:
        provision(named, DATASOURCE, DASHBOARD, timeout=5)
    assert "`docker exec ese-backend-g-1 grafana cli admin reset-admin-password" in str(err.value)


def test_health_is_asked_without_credentials_and_the_api_with_basic_auth(grafana):
    gc = client(grafana)
    log = wire(gc)
    provision(gc, DATASOURCE, DASHBOARD, timeout=5)
    health, *api = log
    assert urlsplit(health.url).path == "/api/health"
    assert "Authorization" not in health.headers
    assert api and all(r.headers["Authorization"].startswith("Basic ") for r in api)


def test_unreachable_grafana_names_the_step_and_stops_at_the_deadline():
    now = [0.0]
    gc = GrafanaClient(f"http://127.0.0.1:{free_port()}", "admin", "x", timeout=1)
    with pytest.raises(GrafanaError) as err:
        gc.wait_healthy(10, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert "not healthy after 10s" in str(err.value)
    assert "health check" in str(err.value)
    assert now[0] >= 10


def test_dashboard_without_title_is_refused_before_any_call(grafana):
    with pytest.raises(GrafanaError, match="no title"):
        client(grafana).ensure_dashboard({"uid": "x", "panels": []}, "ds")


# -- the fake answers as Grafana does ----------------------------------------------------------


def test_fake_requires_basic_auth_but_not_for_health(grafana):
    assert call(grafana, "GET", "/api/health", auth=False)[1]["database"] == "ok"
    status, body = call(grafana, "GET", "/api/datasources/uid/x", auth=False)
    assert (status, body["message"]) == (401, "Unauthorized")


def test_fake_status_codes_match_grafana(grafana):
    assert call(grafana, "GET", "/api/datasources/uid/nope")[0] == 404
    assert call(grafana, "GET", "/api/dashboards/uid/nope")[0] == 404
    assert call(grafana, "PUT", "/api/datasources/uid/nope", {"name": "a", "type": "b"})[0] == 404
    ds = {"name": "P", "type": "prometheus", "url": "http://p", "access": "proxy"}
    assert call(grafana, "POST", "/api/datasources", ds)[0] == 200
    status, body = call(grafana, "POST", "/api/datasources", {**ds, "uid": "other"})
    assert (status, body["message"]) == (409, "data source with the same name already exists")
    status, body = call(grafana, "POST", "/api/dashboards/db", {"dashboard": {"uid": "u"}})
    assert (status, body["message"]) == (400, "Dashboard title cannot be empty")
    dash = {"dashboard": {"uid": "u", "title": "T"}, "overwrite": False}
    assert call(grafana, "POST", "/api/dashboards/db", dash)[1]["version"] == 1
    status, body = call(grafana, "POST", "/api/dashboards/db", dash)
    assert (status, body["status"]) == (412, "version-mismatch")
    status, body = call(grafana, "POST", "/api/dashboards/db", {**dash, "overwrite": True})
    assert (status, body["version"]) == (200, 2)
    missing = {"dashboard": EXPORTED, "overwrite": True, "inputs": []}
    assert call(grafana, "POST", "/api/dashboards/import", missing)[0] == 400


def test_fake_runs_standalone_from_env_credentials(monkeypatch):
    from fake_grafana import server as fake_grafana

    seen: dict[str, str] = {}

    class Probe(FakeGrafanaServer):
        def serve_forever(self, poll_interval: float = 0.5) -> None:
            seen.update(url=self.url, user=self.user, password=self.password)

    monkeypatch.setattr(fake_grafana, "FakeGrafanaServer", Probe)
    monkeypatch.setenv("GF_SECURITY_ADMIN_USER", "boss")
    monkeypatch.setenv("GF_SECURITY_ADMIN_PASSWORD", "pw")
    port = free_port()
    assert fake_grafana.main(["--host", "127.0.0.1", "--port", str(port)]) == 0
    assert seen == {"url": f"http://127.0.0.1:{port}", "user": "boss", "password": "pw"}


def test_datasource_spec_accepts_provisioning_files_and_rejects_incomplete_ones():
    spec = grafana_api.datasource_spec({"datasources": [{**DATASOURCE, "orgId": 1}]})
    assert spec == DATASOURCE
    with pytest.raises(GrafanaError, match="lacks url"):
        grafana_api.datasource_spec({"uid": "a", "name": "b", "type": "prometheus"})


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nonsense", "--url 'nonsense' is not an http(s) URL"),
        ("http://[::1", "--url 'http://[::1' is not a valid URL"),
        ("http://127.0.0.1:99999", "--url 'http://127.0.0.1:99999' is not a valid URL"),
        ("http://127.0.0.1:x", "is not a valid URL"),
        ("ftp://127.0.0.1:3000", "is not an http(s) URL"),
        ("http://127.0.0.1:0", "has port 0"),
    ],
)
def test_grafana_task_rejects_a_bad_url_at_once(url, expected, monkeypatch):
    from invoke import Exit, MockContext

    import tasks
    from ese import task_defaults
    from ese.flows import provisioning

    monkeypatch.setattr(
        provisioning, "provision_grafana", lambda *a, **k: pytest.fail("provisioned")
    )
    c = MockContext()
    c.config.ese = task_defaults.defaults()
    with pytest.raises(Exit) as err:
        tasks.grafana(c, url=url, user="admin", password="pw")
    assert err.value.code == 1
    assert expected in str(err.value.message)
    assert "e.g. --url http://127.0.0.1:3000" in str(err.value.message)


def test_request_errors_are_one_line_naming_the_step():
    # A TCP server that answers with something that is not HTTP (e.g. a Redis port).
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()

        def answer() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"-ERR unknown command\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        gc = GrafanaClient(f"http://127.0.0.1:{srv.getsockname()[1]}", "admin", "x", timeout=5)
        with pytest.raises(GrafanaError) as err:
            gc.request("GET", "/api/datasources", step="datasource lookup")
        thread.join(timeout=5)
    assert "during datasource lookup" in str(err.value)
    assert "BadStatusLine" in str(err.value)
    assert "\n" not in str(err.value) and "\r" not in str(err.value)
    with pytest.raises(GrafanaError, match="during health check") as err:
        GrafanaClient("http://[::1", "a", "b").request("GET", "/api/health", step="health check")
    assert "\n" not in str(err.value)
    gc = GrafanaClient(f"http://127.0.0.1:{free_port()}", "admin", "x", timeout=5)
    with pytest.raises(GrafanaError) as err:
        gc.ensure_datasource(DATASOURCE)
    assert "Grafana unreachable" in str(err.value) and "during datasource lookup" in str(err.value)
    assert "Connection refused" in str(err.value) and "\n" not in str(err.value)


@contextlib.contextmanager
def answering(status: int, body: bytes, content_type: str = "text/html") -> Iterator[str]:
    """A web server that answers every request with one fixed response; yields its URL."""

    class Fixed(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Fixed)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_non_json_answer_is_not_taken_for_grafana():
    with answering(200, b"<html></html>") as url:
        gc = GrafanaClient(url, "admin", "x", timeout=5)
        with pytest.raises(GrafanaError, match=r"but not JSON.*is that Grafana"):
            gc.ensure_datasource(DATASOURCE)


def test_a_proxy_error_page_is_one_line_naming_the_step():
    page = b"<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body>\n</html>\n"
    with answering(502, page) as url, pytest.raises(GrafanaError) as err:
        GrafanaClient(url, "admin", "x", timeout=5).ensure_datasource(DATASOURCE)
    text = str(err.value)
    assert "answered datasource lookup with HTTP 502 but not JSON" in text
    assert "502 Bad Gateway" in text and "invoke logs -s grafana-server" in text
    assert "\n" not in text


def test_a_grafana_500_is_one_line_naming_the_step_and_pointing_at_the_logs():
    body = json.dumps({"message": "Failed to query\ndatasource", "traceID": ""}).encode()
    with answering(500, body, "application/json") as url, pytest.raises(GrafanaError) as err:
        GrafanaClient(url, "admin", "x", timeout=5).ensure_datasource(DATASOURCE)
    text = str(err.value)
    assert text.startswith("Grafana datasource lookup failed: HTTP 500 Failed to query datasource")
    assert "Grafana itself failed; see `invoke logs -s grafana-server`" in text
    assert "\n" not in text


def test_a_grafana_that_never_answers_fails_at_the_read_timeout():
    with socket.socket() as silent:  # accepts (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        gc = GrafanaClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "admin", "x", 0.3)
        start = time.monotonic()
        with pytest.raises(GrafanaError) as err:
            gc.ensure_datasource(DATASOURCE)
    assert time.monotonic() - start < 3
    assert "during datasource lookup: no answer within 0.3s" in str(err.value)


def test_every_call_has_connect_and_read_timeouts(grafana, monkeypatch):
    seen: list[tuple[str, str, object]] = []
    real = requests.Session.request

    def record(self, method, url, *args, **kwargs):
        seen.append((method, urlsplit(url).path, kwargs.get("timeout")))
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", record)
    gc = GrafanaClient(grafana.url, "admin", "s3cret", timeout=7, connect_timeout=2)
    provision(gc, DATASOURCE, DASHBOARD, timeout=5)
    provision(gc, {**DATASOURCE, "url": "http://p:9091"}, NO_UID, timeout=5)
    paths = {path for _, path, _ in seen}
    assert {"/api/health", "/api/datasources", "/api/search", "/api/dashboards/db"} <= paths
    assert {timeout for _, _, timeout in seen} == {(2, 7)}


def test_a_dashboard_without_uid_is_found_by_title_and_not_duplicated(grafana):
    gc = client(grafana)
    assert gc.ensure_dashboard(NO_UID, "ese-prometheus") == "created"
    first = grafana.state.snapshot()
    assert len(first["dashboards"]) == 1
    assert gc.ensure_dashboard(NO_UID, "ese-prometheus") == "unchanged"
    assert grafana.state.snapshot() == first  # no write at all
    changed = {**NO_UID, "refresh": "30s"}
    assert gc.ensure_dashboard(changed, "ese-prometheus") == "updated"
    dashboards = grafana.state.snapshot()["dashboards"]
    assert len(dashboards) == 1
    (stored,) = dashboards.values()
    assert (stored["dashboard"]["version"], stored["dashboard"]["refresh"]) == (2, "30s")


def test_an_exported_dashboard_without_uid_is_imported_once(grafana):
    gc = client(grafana)
    exported = {k: v for k, v in EXPORTED.items() if k != "uid"}
    assert gc.ensure_dashboard(exported, DATASOURCE["uid"]) == "created"
    assert gc.ensure_dashboard(exported, DATASOURCE["uid"]) == "unchanged"
    assert len(grafana.state.snapshot()["dashboards"]) == 1


def test_a_changed_exported_dashboard_is_imported_again_with_overwrite(grafana):
    gc = client(grafana)
    assert gc.ensure_dashboard(EXPORTED, DATASOURCE["uid"]) == "created"
    log = wire(gc)
    changed = {**EXPORTED, "refresh": "5s"}
    assert gc.ensure_dashboard(changed, DATASOURCE["uid"]) == "updated"
    sent = [r for r in log if r.method == "POST"]
    assert [urlsplit(r.url).path for r in sent] == ["/api/dashboards/import"]
    assert posted(sent[0])["overwrite"] is True
    stored = grafana.state.snapshot()["dashboards"]["ese-original"]["dashboard"]
    assert (stored["version"], stored["refresh"]) == (2, "5s")
    assert gc.ensure_dashboard(changed, DATASOURCE["uid"]) == "unchanged"


def test_fake_overwrite_with_the_same_title_takes_over_the_existing_dashboard(grafana):
    # Grafana's getExistingDashboardByTitleAndFolder: the exact title in the same folder.
    def save(dashboard: dict, **extra) -> tuple[int, dict]:
        return call(grafana, "POST", "/api/dashboards/db", {"dashboard": dashboard, **extra})

    status, first = save({"uid": "first", "title": "Ops"}, overwrite=False)
    assert status == 200
    status, body = save({"uid": "second", "title": "Ops"}, overwrite=False)
    assert (status, body["status"]) == (412, "name-exists")
    status, body = save({"title": "Ops", "panels": []}, overwrite=True)
    assert status == 200
    assert (body["id"], body["uid"], body["version"]) == (first["id"], "first", 2)
    status, body = save({"uid": "other", "title": "Ops"}, overwrite=True)
    assert (status, body["uid"], body["version"]) == (200, "first", 3)
    assert list(grafana.state.snapshot()["dashboards"]) == ["first"]
    # Another folder is another place: no conflict there.
    status, body = save({"title": "Ops"}, folderUid="f1", overwrite=False)
    assert status == 200 and body["uid"] != "first"


def test_fake_matches_titles_exactly_not_by_slug(grafana):
    """ "Ops", "ops", "OPS" and "o-p-s"... are different titles to Grafana (`title=?`)."""

    def save(dashboard: dict, **extra) -> tuple[int, dict]:
        return call(grafana, "POST", "/api/dashboards/db", {"dashboard": dashboard, **extra})

    assert save({"uid": "first", "title": "ESE Server"}, overwrite=False)[0] == 200
    for uid, title in [("second", "ese server"), ("third", "ese-server"), ("fourth", "ESE SERVER")]:
        status, body = save({"uid": uid, "title": title}, overwrite=False)
        assert (status, body["uid"], body["version"]) == (200, uid, 1)
        assert body["slug"] == "ese-server"  # one slug, four dashboards
    status, body = save({"title": "ese server", "panels": []}, overwrite=True)
    assert (status, body["uid"], body["version"]) == (200, "second", 2)
    assert sorted(grafana.state.snapshot()["dashboards"]) == ["first", "fourth", "second", "third"]


def test_fake_search_finds_dashboards_by_title(grafana):
    call(grafana, "POST", "/api/dashboards/db", {"dashboard": {"uid": "a", "title": "ESE Server"}})
    status, hits = call(grafana, "GET", "/api/search?query=ese%20serv&type=dash-db")
    assert status == 200
    assert [(h["uid"], h["title"], h["type"]) for h in hits] == [("a", "ESE Server", "dash-db")]
    assert "folderUid" not in hits[0]  # the General folder
    assert call(grafana, "GET", "/api/search?query=nothing")[1] == []
    assert call(grafana, "GET", "/api/search?query=", auth=False)[0] == 401


def test_fake_refuses_to_start_without_a_password(monkeypatch, capsys):
    from fake_grafana import server as fake_grafana

    monkeypatch.delenv("GF_SECURITY_ADMIN_PASSWORD", raising=False)
    with pytest.raises(SystemExit) as err:
        fake_grafana.main(["--host", "127.0.0.1", "--port", "0"])
    assert err.value.code == 2
    assert "no admin password" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs an admin password"):
        FakeGrafanaServer("127.0.0.1", 0, "admin")


def test_the_fake_shows_a_page_with_each_panels_query_linked_to_prometheus(grafana):
    """Opened in a browser, the offline stand-in answers HTML, not a JSON 401."""
    client = GrafanaClient(grafana.url, "admin", "s3cret")
    dashboard = json.loads((REPO_ROOT / "grafana/dashboard.json").read_text())
    datasource = json.loads((REPO_ROOT / "grafana/datasource.json").read_text())
    provision(client, grafana_api.datasource_spec(datasource), dashboard, timeout=10)
    resp = requests.get(grafana.url + "/", timeout=5)
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.text
    assert "offline stand-in for Grafana's HTTP API" in page
    assert "ese-prometheus" in page and dashboard["title"] in page
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
    assert exprs
    for panel in dashboard["panels"]:
        if panel.get("targets"):
            assert html.escape(panel["title"]) in page
    for expr in exprs:
        assert "http://localhost:9090/graph?g0.expr=" + html.escape(quote_plus(expr)) in page
    # The API stays as strict as before.
    status, _ = call(grafana, "GET", "/api/datasources/uid/ese-prometheus", auth=False)
    assert status == 401


# -- the fake stands alone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [  # Grafana's own cases (pkg/infra/slugify tests)
        ("Hello, playground", "hello-playground"),
        ("Hello, %playground", "hello-25playground"),
        ("😢 -", "f09f98a2--"),
        ("?,a . \n ", "a-"),
        ("", "0a68eb57-c88a-5f34-9e9d-27f85e68af4f"),  # empty: a UUID of the title
        ("方向盤後面 hi this is a test خلف المقو", "3cbb528a-0ebf-54ad-bed2-2a188cd1824e"),
        ("Cộng hòa xã hội chủ nghĩa Việt Nam", "cong-hoa-xa-hoi-chu-nghia-viet-nam"),
        ("ESE Server", "ese-server"),
    ],
)
def test_fake_slugs_titles_as_grafana_does(title, expected):
    from fake_grafana.server import slug

    assert slug(title) == expected


def test_fake_runs_from_a_copy_of_its_package_with_the_stdlib_only(tmp_path):
    """What the offline image does: `python -m fake_grafana` from a copied package dir, no
    site-packages (-S), so importing the client, `ese` or `requests` would fail at once."""
    import shutil
    import subprocess
    import sys

    import fake_grafana
    from tests.tooling import stop_process

    package = Path(fake_grafana.__file__).parent
    shutil.copytree(package, tmp_path / "fake_grafana", ignore=shutil.ignore_patterns("__py*"))
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "GF_SECURITY_ADMIN_PASSWORD": "pw"}
    proc = subprocess.Popen(
        [sys.executable, "-S", "-m", "fake_grafana", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        gc = GrafanaClient(f"http://127.0.0.1:{port}", "admin", "pw", timeout=5)
        report = provision(gc, DATASOURCE, DASHBOARD, timeout=15)
        assert (report.datasource, report.dashboard) == ("created", "created")
        assert requests.get(gc.url + "/", timeout=5).text.count("/graph?g0.expr=") >= 1
    finally:
        stop_process(proc)
    output = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in output, output


# -- fidelity: what Grafana stores, matches and refuses ----------------------------------------

LIBRARY_PANEL = {"uid": "lib1", "name": "pings", "kind": 1, "model": {"type": "timeseries"}}
FULL_EXPORT = {  # as Grafana 11's "Export for sharing externally" writes it
    **EXPORTED,
    "__elements": {},
    "__requires": [
        {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "11.1.4"},
        {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
    ],
}


def test_an_exported_dashboard_is_provisioned_once_and_a_second_run_writes_nothing(grafana):
    first = provision(client(grafana), DATASOURCE, FULL_EXPORT, timeout=5)
    assert (first.datasource, first.dashboard) == ("created", "created")
    after_first = grafana.state.snapshot()
    assert after_first["writes"] == ["POST /api/datasources", "POST /api/dashboards/import"]
    stored = after_first["dashboards"]["ese-original"]["dashboard"]
    assert not {"__inputs", "__elements", "__requires"} & set(stored)
    second = provision(client(grafana), DATASOURCE, FULL_EXPORT, timeout=5)
    assert (second.datasource, second.dashboard) == ("unchanged", "unchanged")
    assert grafana.state.snapshot() == after_first  # no write, same versions


def test_fake_import_drops_export_keys_at_the_top_and_inputs_everywhere(grafana):
    nested = {**PANEL, "__inputs": [DS_INPUT], "__requires": ["kept: only the top is cleaned"]}
    dashboard = {**FULL_EXPORT, "__elements": {"lib1": LIBRARY_PANEL}, "panels": [nested]}
    inputs = [{"name": "DS_PROMETHEUS", "type": "datasource", "value": "ds1"}]
    body = {"dashboard": dashboard, "overwrite": True, "inputs": inputs}
    assert call(grafana, "POST", "/api/dashboards/import", body)[0] == 200
    stored = grafana.state.snapshot()["dashboards"]["ese-original"]["dashboard"]
    assert not {"__inputs", "__elements", "__requires"} & set(stored)
    assert "__inputs" not in stored["panels"][0]
    assert stored["panels"][0]["__requires"] == ["kept: only the top is cleaned"]
    assert stored["panels"][0]["datasource"] == "ds1"


def test_resolve_inputs_predicts_what_the_import_stores():
    resolved = grafana_api.resolve_inputs({**FULL_EXPORT, "__elements": {"x": {}}}, "ds1")
    assert not {"__inputs", "__elements", "__requires"} & set(resolved)
    assert resolved["panels"][0]["targets"][0]["datasource"] == {"uid": "ds1"}


def test_dashboards_whose_titles_share_a_slug_are_two_dashboards(grafana):
    gc = client(grafana)
    boards = [
        {"title": title, "refresh": refresh, "panels": []}
        for title, refresh in [("ESE Server", "5s"), ("ese server", "10s"), ("ese-server", "1m")]
    ]
    assert [gc.ensure_dashboard(b, "ds") for b in boards] == ["created"] * 3
    after = grafana.state.snapshot()
    stored = {
        e["dashboard"]["title"]: e["dashboard"]["refresh"] for e in after["dashboards"].values()
    }
    assert stored == {"ESE Server": "5s", "ese server": "10s", "ese-server": "1m"}
    assert [gc.ensure_dashboard(b, "ds") for b in boards] == ["unchanged"] * 3
    assert grafana.state.snapshot() == after
    retitled = {**boards[1], "refresh": "30s"}
    assert gc.ensure_dashboard(retitled, "ds") == "updated"
    stored = {
        e["dashboard"]["title"]: e["dashboard"]["refresh"]
        for e in grafana.state.snapshot()["dashboards"].values()
    }
    assert stored == {"ESE Server": "5s", "ese server": "30s", "ese-server": "1m"}


DS_PATH = f"/api/datasources/uid/{DATASOURCE['uid']}"


def test_fake_datasource_versions_lock_as_grafana_does(grafana):
    """Grafana stores the sent version + 1 and refuses only an older one; none: no check."""
    ds = {"uid": "p1", "name": "P", "type": "prometheus", "url": "http://p", "access": "proxy"}
    assert call(grafana, "POST", "/api/datasources", ds)[1]["datasource"]["version"] == 1

    def put(**extra) -> tuple[int, dict]:
        return call(grafana, "PUT", "/api/datasources/uid/p1", {**ds, **extra})

    assert put(version=1)[1]["datasource"]["version"] == 2
    status, body = put(version=1)  # older than the stored 2
    assert (status, body["message"]) == (
        409,
        "Datasource has already been updated by someone else. Please reload and try again",
    )
    assert put(version=2)[1]["datasource"]["version"] == 3  # the same: taken
    assert put(version=7)[1]["datasource"]["version"] == 8  # newer: taken
    assert put()[1]["datasource"]["version"] == 1  # none: no check, 0 + 1
    assert grafana.state.snapshot()["datasources"]["p1"]["version"] == 1


def someone_else_saves_the_datasource(grafana, gc: GrafanaClient, times: int) -> list:
    """After each of the client's first `times` datasource reads, another user saves it."""
    log = wire(gc)

    def hook(resp: requests.Response, **_) -> None:
        is_read = resp.request.method == "GET" and urlsplit(resp.request.url).path == DS_PATH
        if is_read and resp.status_code == 200 and sum(r.method == "GET" for r in log) <= times:
            current = call(grafana, "GET", DS_PATH)[1]
            status, _ = call(grafana, "PUT", DS_PATH, {**current, "jsonData": {"by": "other"}})
            assert status == 200

    gc.session.hooks["response"].append(hook)
    return log


def test_a_datasource_saved_meanwhile_is_read_again_once_and_updated(grafana):
    gc = client(grafana)
    gc.ensure_datasource(DATASOURCE)
    log = someone_else_saves_the_datasource(grafana, gc, times=1)
    moved = {**DATASOURCE, "url": "http://prometheus-server:9091"}
    assert gc.ensure_datasource(moved) == "updated"
    calls = [(r.method, urlsplit(r.url).path) for r in log]
    assert calls == [("GET", DS_PATH), ("PUT", DS_PATH), ("GET", DS_PATH), ("PUT", DS_PATH)]
    puts = [posted(r) for r in log if r.method == "PUT"]
    assert [p["version"] for p in puts] == [1, 2]  # the version read, each time
    stored = grafana.state.snapshot()["datasources"][DATASOURCE["uid"]]
    assert (stored["url"], stored["jsonData"], stored["version"]) == (
        moved["url"],
        DATASOURCE["jsonData"],
        3,
    )


def test_a_datasource_that_keeps_changing_fails_after_one_retry(grafana):
    gc = client(grafana)
    gc.ensure_datasource(DATASOURCE)
    log = someone_else_saves_the_datasource(grafana, gc, times=2)
    with pytest.raises(GrafanaError) as err:
        gc.ensure_datasource({**DATASOURCE, "url": "http://prometheus-server:9091"})
    assert [r.method for r in log] == ["GET", "PUT", "GET", "PUT"]
    text = str(err.value)
    assert text.startswith("Grafana datasource update failed: HTTP 409 Datasource has already")
    assert "\n" not in text


BAD_UIDS = ["ese prometheus", "ese/server", "é", "x" * 41]


@pytest.mark.parametrize("uid", BAD_UIDS)
def test_fake_refuses_uids_grafana_refuses(grafana, uid):
    ds = {"name": "P", "type": "prometheus", "url": "http://p", "access": "proxy"}
    status, body = call(grafana, "POST", "/api/datasources", {**ds, "uid": uid})
    assert (status, body["message"]) == (400, "Invalid datasource UID.")
    assert call(grafana, "POST", "/api/datasources", {**ds, "uid": "ok_uid-1"})[0] == 200
    status, body = call(grafana, "PUT", "/api/datasources/uid/ok_uid-1", {**ds, "uid": uid})
    assert (status, body["message"]) == (400, "Invalid datasource UID.")
    reason = (
        "uid too long, max 40 characters" if uid == "x" * 41 else "uid contains illegal characters"
    )
    dash = {"dashboard": {"uid": uid, "title": "T"}, "overwrite": True}
    assert call(grafana, "POST", "/api/dashboards/db", dash) == (400, {"message": reason})
    imported = {**dash, "inputs": []}
    assert call(grafana, "POST", "/api/dashboards/import", imported) == (400, {"message": reason})
    longest = {**dash, "dashboard": {"uid": "x" * 40, "title": "T"}}
    assert call(grafana, "POST", "/api/dashboards/db", longest)[0] == 200
    assert grafana.state.snapshot()["writes"] == [
        "POST /api/datasources",
        "POST /api/dashboards/db",
    ]


@pytest.mark.parametrize("uid", [*BAD_UIDS, "", None])
def test_the_client_refuses_a_bad_uid_before_any_call(grafana, uid):
    gc = client(grafana)
    log = wire(gc)
    with pytest.raises(GrafanaError, match="is not a Grafana uid") as err:
        gc.ensure_datasource({**DATASOURCE, "uid": uid})
    assert "datasource_uid in topology.toml" in str(err.value) and "\n" not in str(err.value)
    if uid:  # a dashboard without a uid is fine: Grafana gives it one
        with pytest.raises(GrafanaError, match=r"dashboard uid .* is not a Grafana uid"):
            gc.ensure_dashboard({**DASHBOARD, "uid": uid}, DATASOURCE["uid"])
        with pytest.raises(GrafanaError, match=r"dashboard uid .* is not a Grafana uid"):
            gc.ensure_dashboard({**EXPORTED, "uid": uid}, DATASOURCE["uid"])
    assert log == []  # not one request


def test_the_offline_image_is_built_from_the_fake_package_alone(tmp_path, monkeypatch):
    """Context and cache key: the package's sources only, so an unrelated change (or a
    bytecode cache) does not rebuild the image, and nothing is pip-installed."""
    import shutil

    import fake_grafana
    from ese.kit import IMAGES_DIR, build
    from ese.kit.catalog import BY_NAME

    package = tmp_path / "fake_grafana"
    shutil.copytree(
        Path(fake_grafana.__file__).parent, package, ignore=shutil.ignore_patterns("__py*")
    )
    monkeypatch.setattr(build, "FAKE_GRAFANA", package)
    monkeypatch.setattr(build, "_parent_id", lambda image: "sha256:python-base")
    monkeypatch.setattr(build, "image_key", lambda tag: None)  # never up to date
    monkeypatch.setattr(build, "echo", lambda message: None)
    builds: list[tuple[str, set[str]]] = []

    def fake_build(spec):
        context = spec.context
        files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
        builds.append((spec.key, files))
        assert Path(spec.dockerfile) == IMAGES_DIR / "grafana-fake" / "Dockerfile"
        return "sha256:new"

    monkeypatch.setattr(build, "build", fake_build)

    def key_and_files() -> tuple[str, set[str]]:
        assert build._grafana_image(BY_NAME["grafana"], build.Options()) is True
        return builds[-1]

    key, files = key_and_files()
    assert files == {f"fake_grafana/{p.name}" for p in package.glob("*.py")}
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"\0cache")
    (tmp_path / "elsewhere.py").write_text("# an unrelated change\n")
    assert key_and_files() == (key, files)
    (package / "server.py").write_text((package / "server.py").read_text() + "\n# changed\n")
    assert key_and_files()[0] != key
    dockerfile = (IMAGES_DIR / "grafana-fake" / "Dockerfile").read_text()
    assert "pip install" not in dockerfile and "COPY fake_grafana " in dockerfile
