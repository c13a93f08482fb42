"""Grafana provisioning against the in-process fake Grafana, and the fake's own fidelity."""

from __future__ import annotations

import base64
import html
import json
import urllib.error
import urllib.request

import pytest

from ese.grafana import api as grafana_api
from ese.grafana.api import GrafanaClient, GrafanaError, provision
from ese.paths import REPO_ROOT
from fake_grafana.server import FakeGrafanaServer
from tests.tooling import free_port

DATASOURCE = grafana_api.datasource_spec(
    json.loads((REPO_ROOT / "grafana" / "datasource.json").read_text(encoding="utf-8"))
)
DASHBOARD = json.loads((REPO_ROOT / "grafana" / "dashboard.json").read_text(encoding="utf-8"))
DS_INPUT = {"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
            "pluginId": "prometheus", "pluginName": "Prometheus"}  # fmt: skip
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


def client(server: FakeGrafanaServer, password: str = "s3cret") -> GrafanaClient:
    return GrafanaClient(server.url, "admin", password, timeout=5)


def call(server: FakeGrafanaServer, method: str, path: str, body=None, auth=True):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, method=method, data=data)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(b"admin:s3cret").decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


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
    status, _ = call(grafana, "POST", "/api/datasources",
                     {"name": DATASOURCE["name"], "type": "prometheus", "url": "http://old:9090",
                      "access": "proxy", "uid": "made-by-hand"})  # fmt: skip
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
    assert grafana.state.snapshot()["writes"] == 0


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
    import socket
    import threading

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
    with pytest.raises(GrafanaError, match="during health check"):
        GrafanaClient("http://[::1", "a", "b").request("GET", "/api/health", step="health check")


def test_a_non_json_answer_is_not_taken_for_grafana():
    import http.server
    import threading

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"<html></html>")

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gc = GrafanaClient(f"http://127.0.0.1:{server.server_port}", "admin", "x", timeout=5)
        with pytest.raises(GrafanaError, match=r"but not JSON.*is that Grafana"):
            gc.ensure_datasource(DATASOURCE)
    finally:
        server.shutdown()
        server.server_close()


NO_UID = {"title": "Hand made", "panels": [PANEL | {"datasource": "ese-prometheus"}]}


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
    sent: list[dict] = []
    real = gc.request

    def spy(method, path, body=None, step="", auth=True):
        if method == "POST":
            sent.append({"path": path, **(body or {})})
        return real(method, path, body, step, auth)

    gc.request = spy  # type: ignore[method-assign]
    changed = {**EXPORTED, "refresh": "5s"}
    assert gc.ensure_dashboard(changed, DATASOURCE["uid"]) == "updated"
    assert [s["path"] for s in sent] == ["/api/dashboards/import"]
    assert sent[0]["overwrite"] is True
    stored = grafana.state.snapshot()["dashboards"]["ese-original"]["dashboard"]
    assert (stored["version"], stored["refresh"]) == (2, "5s")
    assert gc.ensure_dashboard(changed, DATASOURCE["uid"]) == "unchanged"


def test_fake_overwrite_with_the_same_title_takes_over_the_existing_dashboard(grafana):
    # Grafana's getExistingDashboardByTitleAndFolder: same title (slug) in the same folder.
    status, first = call(
        grafana,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "first", "title": "Ops"}, "overwrite": False},
    )
    assert status == 200
    status, body = call(
        grafana,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "second", "title": "ops"}, "overwrite": False},
    )
    assert (status, body["status"]) == (412, "name-exists")
    status, body = call(
        grafana,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"title": "Ops", "panels": []}, "overwrite": True},
    )
    assert status == 200
    assert (body["id"], body["uid"], body["version"]) == (first["id"], "first", 2)
    status, body = call(
        grafana,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"uid": "other", "title": "OPS"}, "overwrite": True},
    )
    assert (status, body["uid"], body["version"]) == (200, "first", 3)
    assert list(grafana.state.snapshot()["dashboards"]) == ["first"]
    # Another folder is another place: no conflict there.
    status, body = call(
        grafana,
        "POST",
        "/api/dashboards/db",
        {"dashboard": {"title": "Ops"}, "folderUid": "f1", "overwrite": False},
    )
    assert status == 200 and body["uid"] != "first"  # fmt: skip


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
    import json
    import urllib.request

    client = GrafanaClient(grafana.url, "admin", "s3cret")
    dashboard = json.loads((REPO_ROOT / "grafana/dashboard.json").read_text())
    datasource = json.loads((REPO_ROOT / "grafana/datasource.json").read_text())
    provision(client, grafana_api.datasource_spec(datasource), dashboard, timeout=10)
    with urllib.request.urlopen(grafana.url + "/", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        page = resp.read().decode()
    assert "offline stand-in for Grafana's HTTP API" in page
    assert "ese-prometheus" in page and dashboard["title"] in page
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
    assert exprs
    for panel in dashboard["panels"]:
        if panel.get("targets"):
            assert html.escape(panel["title"]) in page
    from urllib.parse import quote_plus

    for expr in exprs:
        assert "http://localhost:9090/graph?g0.expr=" + html.escape(quote_plus(expr)) in page
    # The API stays as strict as before.
    status, _ = call(grafana, "GET", "/api/datasources/uid/ese-prometheus", auth=False)
    assert status == 401
