"""Provision Grafana through its HTTP API, idempotently.

Steps: wait for `GET /api/health`; create or update the Prometheus datasource by its fixed uid;
create or update the dashboard (`POST /api/dashboards/db` with overwrite, or
`POST /api/dashboards/import` for a dashboard exported with `__inputs`). Every write is skipped
when Grafana already holds the desired content, so a second run changes nothing (Grafana bumps
the version of a datasource or dashboard on every save, even an identical one).
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ese.errors import EseError

# Datasource fields this project manages; everything else Grafana adds (id, orgId, version,
# typeLogoUrl, readOnly, ...) is ignored when comparing and kept when updating.
DATASOURCE_FIELDS = ("uid", "name", "type", "access", "url", "isDefault", "basicAuth", "jsonData")
# Dashboard fields Grafana sets itself on save.
_VOLATILE = ("id", "version")
_VAR = re.compile(r"\$\{.+?\}")


class GrafanaError(EseError):
    """A provisioning step failed; the message names the step."""


def reset_hint(container: str = "<grafana container>") -> str:
    return (
        "Grafana keeps the admin password from its first start, so a changed docker/.env does "
        "not apply to an existing Grafana volume; reset it with `docker exec "
        f"{container} grafana cli admin reset-admin-password <GRAFANA_ADMIN_PASSWORD from "
        "docker/.env>`, or start fresh with `invoke down --volumes` (deletes Grafana, Prometheus "
        "and Redis data)"
    )


@dataclass
class Response:
    status: int
    body: Any


class GrafanaClient:
    """A minimal Grafana HTTP API client (stdlib only) using basic auth."""

    def __init__(
        self, url: str, user: str, password: str, timeout: float = 10.0, container: str = ""
    ) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self.timeout = timeout
        self.container = container or "<grafana container>"
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._auth = f"Basic {token}"

    def request(
        self, method: str, path: str, body: Any = None, step: str = "", auth: bool = True
    ) -> Response:
        """One API call; HTTP errors come back as a Response, every other failure raises a
        GrafanaError naming the step: refused or reset connections (OSError), something that
        is not HTTP on that port (http.client.HTTPException, e.g. BadStatusLine) and a URL that
        urllib cannot use (ValueError, e.g. `http://[::1`)."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        try:
            req = urllib.request.Request(self.url + path, data=data, method=method)
            if auth:
                req.add_header("Authorization", self._auth)
            req.add_header("Accept", "application/json")
            if data is not None:
                req.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (http.client.HTTPException, ValueError, OSError) as exc:
            reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            raise GrafanaError(
                f"Grafana unreachable at {self.url} during {step or method + ' ' + path}: {reason}",
                "check `invoke status` and `invoke logs -s grafana-server`",
            ) from None
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
            if 200 <= status < 300:  # some other web server on that port
                raise GrafanaError(
                    f"{self.url} answered {step or path} with HTTP {status} but not JSON: "
                    f"{parsed[:80]!r}",
                    "is that Grafana? check --url / INVOKE_ESE_GRAFANA_URL",
                ) from None
        if status == 401:
            raise GrafanaError(
                f"Grafana rejected user {self.user!r} (401) during {step or path}",
                reset_hint(self.container),
            )
        return Response(status, parsed)

    def fail(self, step: str, resp: Response) -> GrafanaError:
        message = resp.body.get("message") if isinstance(resp.body, dict) else resp.body
        return GrafanaError(
            f"Grafana {step} failed: HTTP {resp.status} {message}",
            "check the datasource/dashboard JSON under grafana/ and "
            "`invoke logs -s grafana-server`",
        )

    def wait_healthy(
        self,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        """Poll `/api/health` until Grafana's database is ok, or fail at the deadline."""
        deadline = clock() + timeout
        last = "no answer"
        while True:
            try:
                # No credentials: /api/health is public, and a wrong password must not look
                # like "not up yet" (the 401 surfaces, with its hint, at the first real call).
                resp = self.request("GET", "/api/health", step="health check", auth=False)
                body = resp.body if isinstance(resp.body, dict) else {}
                if resp.status == 200 and body.get("database") == "ok":
                    return body
                last = f"HTTP {resp.status} {resp.body}"
            except GrafanaError as exc:
                last = exc.what
            if clock() >= deadline:
                raise GrafanaError(
                    f"Grafana not healthy after {timeout:.0f}s at {self.url}/api/health ({last})",
                    "see `invoke logs -s grafana-server`; "
                    "slow start: INVOKE_ESE_GRAFANA_TIMEOUT=180",
                )
            sleep(1.0)

    # -- datasource -------------------------------------------------------------------------

    def ensure_datasource(self, desired: Mapping[str, Any]) -> str:
        """Create or update the datasource by its fixed uid; return what was done."""
        uid, name = desired["uid"], desired["name"]
        want = {k: desired[k] for k in DATASOURCE_FIELDS if k in desired}
        got = self.request("GET", f"/api/datasources/uid/{_q(uid)}", step="datasource lookup")
        if got.status == 200:
            return self._update_datasource(uid, got.body, want)
        if got.status != 404:
            raise self.fail("datasource lookup", got)
        created = self.request("POST", "/api/datasources", want, step="datasource create")
        if created.status == 200:
            return "created"
        if created.status != 409:
            raise self.fail("datasource create", created)
        # 409: a datasource with this name (but another uid) exists, e.g. made by hand in the
        # UI. Take it over: update it in place and give it the fixed uid the dashboard uses.
        by_name = self.request(
            "GET", f"/api/datasources/name/{_q(name)}", step="datasource lookup by name"
        )
        if by_name.status != 200:
            raise self.fail("datasource lookup by name", by_name)
        return self._update_datasource(by_name.body["uid"], by_name.body, want)

    def _update_datasource(self, uid: str, current: Mapping[str, Any], want: dict[str, Any]) -> str:
        if all(current.get(k) == v for k, v in want.items()):
            return "unchanged"
        if current.get("readOnly"):
            raise GrafanaError(
                f"Grafana datasource {current.get('name')!r} is read-only (file-provisioned)",
                "remove it from Grafana's provisioning directory, then run `invoke grafana`",
            )
        body = {**{k: v for k, v in current.items() if k != "version"}, **want}
        path = f"/api/datasources/uid/{_q(uid)}"
        resp = self.request("PUT", path, body, step="datasource update")
        if resp.status != 200:
            raise self.fail("datasource update", resp)
        return "updated"

    # -- dashboard --------------------------------------------------------------------------

    def find_dashboard_uid(self, title: str) -> str:
        """The uid of the General-folder dashboard Grafana would match by title, or "".

        Grafana matches a saved dashboard by uid and then by title (its slug) within the
        folder; a save with overwrite takes the same-titled one over. So a dashboard without a
        uid is looked up here, and compared with what is stored, instead of re-imported.
        """
        query = urllib.parse.urlencode({"query": title, "type": "dash-db"})
        resp = self.request("GET", f"/api/search?{query}", step="dashboard search")
        if resp.status != 200 or not isinstance(resp.body, list):
            raise self.fail("dashboard search", resp)
        for hit in resp.body:
            if not isinstance(hit, dict) or hit.get("type", "dash-db") != "dash-db":
                continue
            if not hit.get("folderUid") and slug(str(hit.get("title", ""))) == slug(title):
                return str(hit.get("uid") or "")
        return ""

    def _stored_dashboard(self, uid: str) -> dict[str, Any] | None:
        got = self.request("GET", f"/api/dashboards/uid/{_q(uid)}", step="dashboard lookup")
        if got.status == 404:
            return None
        if got.status != 200 or not isinstance(got.body, dict):
            raise self.fail("dashboard lookup", got)
        dash = got.body.get("dashboard")
        return dash if isinstance(dash, dict) else {}

    def ensure_dashboard(self, dashboard: Mapping[str, Any], datasource_uid: str) -> str:
        """Create or update the dashboard with overwrite; import it if it has `__inputs`."""
        inputs = dashboard.get("__inputs")
        resolved = resolve_inputs(dashboard, datasource_uid) if inputs else dict(dashboard)
        title = str(resolved.get("title") or "").strip()
        if not title:
            raise GrafanaError("dashboard has no title", 'add a "title" to the dashboard JSON')
        uid = str(resolved.get("uid") or "")
        current = self._stored_dashboard(uid) if uid else None
        if current is None:
            # No uid, or none stored under it: a same-titled dashboard in the folder is the one
            # Grafana would overwrite, so it is the one to compare with (and to keep the uid of).
            found = self.find_dashboard_uid(title)
            if found:
                uid, current = found, self._stored_dashboard(found)
        if current is not None and _same_dashboard(current, {**resolved, "uid": uid}):
            return "unchanged"
        action = "updated" if current is not None else "created"
        target_uid = {"uid": uid} if uid else {}
        if inputs:
            body = {
                "dashboard": {**dashboard, **target_uid, "id": None},
                "overwrite": True,
                "inputs": import_inputs(dashboard, datasource_uid),
                "folderUid": "",
            }
            resp = self.request("POST", "/api/dashboards/import", body, step="dashboard import")
            step = "dashboard import"
        else:
            body = {
                "dashboard": {**resolved, **target_uid, "id": None},
                "overwrite": True,
                "folderUid": "",
                "message": "provisioned by invoke grafana",
            }
            resp = self.request("POST", "/api/dashboards/db", body, step="dashboard save")
            step = "dashboard save"
        if resp.status != 200:
            raise self.fail(step, resp)
        return action


def slug(title: str) -> str:
    """Grafana's dashboard slug (ASCII titles): lower case, runs of other characters -> '-'."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _q(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _strip(dashboard: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in _VOLATILE}


def _same_dashboard(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    return _strip(current) == _strip(desired)


def import_inputs(dashboard: Mapping[str, Any], datasource_uid: str) -> list[dict[str, Any]]:
    """The `inputs` of an import request: datasource inputs map to our datasource uid."""
    out = []
    for item in dashboard.get("__inputs", []):
        entry = {"name": item["name"], "type": item.get("type", "datasource")}
        if entry["type"] == "datasource":
            entry["pluginId"] = item.get("pluginId", "prometheus")
            entry["value"] = datasource_uid
        else:  # constants keep the value the exporter put in the file
            entry["value"] = item.get("value", "")
        out.append(entry)
    return out


def resolve_inputs(dashboard: Mapping[str, Any], datasource_uid: str) -> dict[str, Any]:
    """What Grafana stores for an import: `${NAME}` replaced, `__inputs` dropped (at any depth)."""
    values = {f"${{{i['name']}}}": i["value"] for i in import_inputs(dashboard, datasource_uid)}

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return _VAR.sub(lambda m: values.get(m.group(0), m.group(0)), node)
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k != "__inputs"}
        return node

    return walk(copy.deepcopy(dict(dashboard)))


@dataclass
class Report:
    health: dict[str, Any] = field(default_factory=dict)
    datasource: str = ""
    dashboard: str = ""

    def lines(self) -> list[str]:
        return [f"Grafana datasource: {self.datasource}", f"Grafana dashboard: {self.dashboard}"]


def provision(
    client: GrafanaClient,
    datasource: Mapping[str, Any],
    dashboard: Mapping[str, Any],
    timeout: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Health, then datasource, then dashboard; raise GrafanaError naming the failing step."""
    report = Report()
    report.health = client.wait_healthy(timeout, clock, sleep)
    report.datasource = client.ensure_datasource(datasource)
    report.dashboard = client.ensure_dashboard(dashboard, datasource["uid"])
    return report


def datasource_spec(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept a bare datasource object or a provisioning file `{"datasources": [...]}`."""
    if "datasources" in raw:
        items = raw["datasources"]
        if not items:
            raise GrafanaError("the datasource file lists no datasource", "run `invoke render`")
        raw = items[0]
    missing = [k for k in ("uid", "name", "type", "url") if not raw.get(k)]
    if missing:
        raise GrafanaError(
            f"the datasource definition lacks {', '.join(missing)}", "run `invoke render`"
        )
    spec = {k: raw[k] for k in DATASOURCE_FIELDS if k in raw}
    spec.setdefault("access", "proxy")
    return spec
