"""Provision Grafana through its HTTP API, idempotently.

Steps: wait for `GET /api/health`; create or update the Prometheus datasource by its fixed uid;
create or update the dashboard (`POST /api/dashboards/db` with overwrite, or
`POST /api/dashboards/import` for a dashboard exported with `__inputs`). Every write is skipped
when Grafana already holds the desired content, so a second run changes nothing (Grafana bumps
the version of a datasource or dashboard on every save, even an identical one). What Grafana
holds is predicted as Grafana makes it: an import drops `__inputs`, `__elements` and
`__requires`; a dashboard without a uid is the General-folder one with the exact same title.

Why not the `grafana-client` package: its releases since 4.0 are built on niquests, whose
urllib3-future installs over the `urllib3` package that requests and the Docker SDK use, so
installing it changes how every HTTP call of the tasks fails (tried: a non-HTTP answer then
reads as ConnectionResetError instead of BadStatusLine, and a test here went red). Its last
requests-based release (3.11) is no longer maintained, and neither has the dashboard import or
the per-step one-line errors, which would still be written here. The HTTP layer below is
`GrafanaClient.request` and a few helpers around one `requests.Session`.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from ese.errors import EseError

# Datasource fields this project manages; everything else Grafana adds (id, orgId, version,
# typeLogoUrl, readOnly, ...) is ignored when comparing and kept when updating.
DATASOURCE_FIELDS = ("uid", "name", "type", "access", "url", "isDefault", "basicAuth", "jsonData")
# Dashboard fields Grafana sets itself on save.
_VOLATILE = ("id", "version")
_VAR = re.compile(r"\$\{.+?\}")
# Top-level keys of an exported dashboard that Grafana's import drops before saving.
_EXPORT_ONLY = ("__elements", "__inputs", "__requires")
# Grafana's uid rule (util.ValidateUID): 1 to 40 letters, digits, '-' and '_'.
_UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
# Connecting to a local Grafana is quick, or it is not up; an answer may take longer (a first
# start migrating its database, a large dashboard save).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
_LOGS = "`invoke logs -s grafana-server`"


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
    """A minimal Grafana HTTP API client: one `requests.Session` with basic auth.

    Every call has explicit (connect, read) timeouts and never follows a redirect (Grafana's API
    answers JSON in place; a redirect is a login page or another server).
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        timeout: float = READ_TIMEOUT,
        container: str = "",
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self.timeouts = (min(connect_timeout, timeout), timeout)
        self.container = container or "<grafana container>"
        self.session = requests.Session()
        self.session.auth = (user, password)
        self.session.headers["Accept"] = "application/json"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        step: str = "",
        auth: bool = True,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        """One API call; HTTP errors come back as a Response, every other failure raises a
        one-line GrafanaError naming the step: no connection, no answer in time, something that
        is not HTTP on that port (BadStatusLine), a URL requests cannot use, and an answer that
        is not JSON (another web server, a proxy's error page)."""
        step = step or f"{method} {path}"
        try:
            resp = self.session.request(
                method,
                self.url + path,
                json=body,
                params=params,
                # The session's basic auth, or none: an explicit no-op also keeps ~/.netrc out.
                auth=None if auth else _no_auth,
                timeout=self.timeouts,
                allow_redirects=False,
            )
        except (requests.RequestException, ValueError) as exc:
            raise GrafanaError(
                f"Grafana unreachable at {self.url} during {step}: {self._reason(exc)}",
                f"check `invoke status` and {_LOGS}",
            ) from None
        status, raw = resp.status_code, resp.content
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:  # some other web server on that port, or a proxy's error page
            hint = "is that Grafana? check --url / INVOKE_ESE_GRAFANA_URL"
            raise GrafanaError(
                f"{self.url} answered {step} with HTTP {status} but not JSON: {_snippet(raw)}",
                hint + (f" and {_LOGS}" if status >= 500 else ""),
            ) from None
        if status == 401:
            raise GrafanaError(
                f"Grafana rejected user {self.user!r} (401) during {step}",
                reset_hint(self.container),
            )
        return Response(status, parsed)

    def _reason(self, exc: BaseException) -> str:
        """The root cause of a requests failure, in a few words."""
        if isinstance(exc, requests.ConnectTimeout):
            return f"no connection within {self.timeouts[0]:g}s"
        if isinstance(exc, requests.Timeout):
            return f"no answer within {self.timeouts[1]:g}s"
        root = _root_cause(exc)
        if isinstance(root, OSError) and root.errno is not None:
            return _one_line(str(root))  # e.g. [Errno 111] Connection refused
        return _one_line(f"{type(root).__name__}: {root}")

    def fail(self, step: str, resp: Response) -> GrafanaError:
        """The one-line error for an unexpected answer to `step`."""
        message = resp.body.get("message") if isinstance(resp.body, dict) else resp.body
        what = f"Grafana {step} failed: HTTP {resp.status} {_one_line(str(message))[:200]}"
        if resp.status >= 500:
            return GrafanaError(what, f"Grafana itself failed; see {_LOGS}")
        return GrafanaError(what, f"check the datasource/dashboard JSON under grafana/ and {_LOGS}")

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
        uid, name = check_uid("datasource", desired.get("uid")), desired["name"]
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
        return self._update_datasource(str(by_name.body.get("uid", "")), by_name.body, want)

    def _update_datasource(self, uid: str, current: Mapping[str, Any], want: dict[str, Any]) -> str:
        """PUT what we want over what we read, with the version we read.

        Grafana locks optimistically: a PUT with a version older than the stored one is a 409
        (someone saved in between). Then the datasource is read again, once, and compared anew.
        """
        path = f"/api/datasources/uid/{_q(uid)}"
        resp = self._put_datasource(path, current, want)
        if resp is not None and resp.status == 409:
            again = self.request("GET", path, step="datasource lookup")
            if again.status != 200 or not isinstance(again.body, dict):
                raise self.fail("datasource lookup", again)
            resp = self._put_datasource(path, again.body, want)
        if resp is None:
            return "unchanged"
        if resp.status != 200:
            raise self.fail("datasource update", resp)
        return "updated"

    def _put_datasource(
        self, path: str, current: Mapping[str, Any], want: dict[str, Any]
    ) -> Response | None:
        """The PUT's answer, or None when Grafana already holds what we want."""
        if all(current.get(k) == v for k, v in want.items()):
            return None
        if current.get("readOnly"):
            raise GrafanaError(
                f"Grafana datasource {current.get('name')!r} is read-only (file-provisioned)",
                "remove it from Grafana's provisioning directory, then run `invoke grafana`",
            )
        # `current` carries the version we read: the PUT conflicts if someone saved since.
        return self.request("PUT", path, {**current, **want}, step="datasource update")

    # -- dashboard --------------------------------------------------------------------------

    def find_dashboard_uid(self, title: str) -> str:
        """The uid of the General-folder dashboard with exactly this title, or "".

        Grafana matches a saved dashboard by uid and then by its exact title within the folder
        (not by slug: "ESE Server" and "ese-server" are two dashboards); a save with overwrite
        takes the same-titled one over. So a dashboard without a uid is looked up here, and
        compared with what is stored, instead of re-imported. Search matches substrings.
        """
        params = {"query": title, "type": "dash-db"}
        resp = self.request("GET", "/api/search", step="dashboard search", params=params)
        if resp.status != 200 or not isinstance(resp.body, list):
            raise self.fail("dashboard search", resp)
        for hit in resp.body:
            if not isinstance(hit, dict) or hit.get("type", "dash-db") != "dash-db":
                continue
            if not hit.get("folderUid") and hit.get("title") == title:
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
        uid = check_uid("dashboard", resolved["uid"]) if resolved.get("uid") else ""
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


def check_uid(kind: str, uid: Any) -> str:
    """The uid, if Grafana would take it; else a one-line GrafanaError before any call."""
    if isinstance(uid, str) and _UID.fullmatch(uid):
        return uid
    raise GrafanaError(
        f"the {kind} uid {uid!r} is not a Grafana uid (1 to 40 letters, digits, '-' or '_')",
        f"fix [grafana] {kind}_uid in topology.toml and run `invoke render`, "
        'or the dashboard file\'s "uid"',
    )


def _q(value: str) -> str:
    """One path segment (a datasource name may hold spaces or slashes)."""
    return quote(str(value), safe="")


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def _root_cause(exc: BaseException) -> BaseException:
    """Follow urllib3's `reason`, wrapped exceptions in args, then __cause__/__context__."""
    seen = {id(exc)}
    while True:
        reason = getattr(exc, "reason", None)
        inner = reason if isinstance(reason, BaseException) else None
        inner = inner or next((a for a in exc.args if isinstance(a, BaseException)), None)
        inner = inner or exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _snippet(raw: bytes) -> str:
    return repr(_one_line(raw[:80].decode("utf-8", "replace")))


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
    """What Grafana stores for an import: `${NAME}` replaced, `__inputs` dropped at any depth,
    `__elements` and `__requires` at the top (dashboardimport's evaluator, then its save)."""
    values = {f"${{{i['name']}}}": i["value"] for i in import_inputs(dashboard, datasource_uid)}

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return _VAR.sub(lambda m: values.get(m.group(0), m.group(0)), node)
        if isinstance(node, list):
            return [walk(x) for x in node]
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items() if k != "__inputs"}
        return node

    resolved: dict[str, Any] = walk(copy.deepcopy(dict(dashboard)))
    for key in _EXPORT_ONLY:
        resolved.pop(key, None)
    return resolved


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
