"""A fake Grafana HTTP API (stdlib only) for tests and as the end-to-end stand-in image.

It implements exactly the endpoints the provisioning client (ese/grafana/api.py) uses and answers
them as Grafana 11 does:
basic auth (401 without or with wrong credentials), 404 for an unknown datasource or dashboard
uid, 409 when a created datasource's name or uid is taken, 400 for a dashboard without a title
and for a uid outside [A-Za-z0-9_-] or longer than 40, 412 when saving over an existing
dashboard without `overwrite`, and a version that goes up on every save. A datasource update
stores the version it was sent plus one and answers 409 only when the sent version is older
than the stored one (no version: no check). An import substitutes `${NAME}` inputs and stores
the dashboard without `__inputs`, `__elements` and `__requires`. `GET /__fake__/state` (no
auth, read-only) shows the stored objects and every write (`writes`: "METHOD /path") for tests,
and `GET /` a page for people (see page.py).

Run it: `python -m fake_grafana --port 3000 --user U --password P`; like Grafana it also
reads GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD, GF_SERVER_HTTP_PORT and
GF_SERVER_HTTP_ADDR, each also from the file named by the same variable with a `__FILE` suffix
(Docker secrets, e.g. GF_SECURITY_ADMIN_PASSWORD__FILE). A password is required (no
admin/admin). `GET /api/search` finds dashboards by title; a save over a dashboard with the
exact same title in its folder takes it over (with `overwrite`) as Grafana does.

Stdlib only, and nothing from the client: it is the offline kit's Grafana image (run from a copy
of this package, nothing installed), and a fake that shared the client's helpers would agree with
the client by construction. So the slug and the import's template evaluation are written here
after Grafana's own (pkg/infra/slugify, dashboardimport's DashTemplateEvaluator).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import json
import os
import re
import threading
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fake_grafana import page

VERSION = "11.1.4-fake"
_VAR = re.compile(r"\$\{(.+?)\}")
# Grafana's util.ValidateUID: letters, digits, '-' and '_', at most 40 characters.
_UID = re.compile(r"[A-Za-z0-9_-]*")
MAX_UID = 40
# What Grafana answers for a datasource uid it refuses (errutil's JSON body); Grafana 11 refuses
# it with the failWrongDSUID feature toggle on (it only logs a warning without), this fake always.
_BAD_DS_UID = {
    "message": "Invalid datasource UID.",
    "messageId": "datasource.uidInvalid",
    "statusCode": 400,
    "traceID": "",
}
# Top-level keys of an exported dashboard that Grafana's import drops before saving.
_EXPORT_ONLY = ("__elements", "__inputs", "__requires")


class State:
    """Datasources and dashboards of one org, guarded by a lock (the server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.datasources: dict[str, dict[str, Any]] = {}  # by uid
        self.dashboards: dict[str, dict[str, Any]] = {}  # by uid
        self.next_id = 1
        self.writes: list[str] = []  # "METHOD /path" of every successful write, in order

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(
                {
                    "datasources": self.datasources,
                    "dashboards": self.dashboards,
                    "writes": self.writes,
                }
            )


def _new_uid(n: int) -> str:
    return f"fake{n:08d}"


# Grafana's slugify for dashboard URLs (pkg/infra/slugify, the form that hex-encodes): kept as
# is: a-z, 0-9, '-' and '_'; dropped: these marks; spelt out: the entries below; an accented
# Latin letter loses its accent; any other character becomes the hex of its UTF-8 bytes
# (Grafana transliterates Cyrillic and Hebrew, this does not). Nothing matches on a slug: Grafana
# finds a dashboard by uid or exact title; the slug only shapes URLs.
_SLUG_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_SLUG_DROP = frozenset(",\"'\n\r\0?.()")
_SLUG_SPELL = {
    " ": "-",
    "&": "and",
    "@": "at",
    "©": "c",
    "®": "r",
    "™": "tm",
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "ü": "ue",
    "đ": "d",
    "ħ": "h",
    "ı": "i",
    "ĳ": "ij",
    "ĸ": "k",
    "ł": "l",
    "ŀ": "l",
    "ŉ": "n",
    "ŋ": "n",
    "ŧ": "t",
    "þ": "p",
    "ſ": "z",
    "ƒ": "f",
    "ə": "e",
    "ǽ": "ae",
    "ǿ": "o",
}


def slug(title: str) -> str:
    """Grafana's dashboard slug; an empty or over-long one (> 50) is a UUID of the title."""
    out = []
    for ch in title.strip().lower():
        if ch in _SLUG_SPELL:
            out.append(_SLUG_SPELL[ch])
        elif ch in _SLUG_KEEP:
            out.append(ch)
        elif ch in _SLUG_DROP:
            continue
        else:
            decomposed = unicodedata.normalize("NFD", ch)
            base, marks = decomposed[0], decomposed[1:]
            accented = base in _SLUG_KEEP and marks and all(map(unicodedata.combining, marks))
            out.append(base if accented else ch.encode("utf-8").hex())
    result = "".join(out)
    if not result or len(result) > 50:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, title))
    return result


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafanaServer
    protocol_version = "HTTP/1.1"

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _page(self) -> None:
        """The browser's view (no login: it shows queries, never credentials)."""
        snap = self.server.state.snapshot()
        datasources = list(snap["datasources"].values())
        dashboards = [entry["dashboard"] for entry in snap["dashboards"].values()]
        raw = page.render(datasources, dashboards).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return ValueError

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header:
            self._send(401, {"message": "Unauthorized"})
            return False
        scheme, _, value = header.partition(" ")
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        expected = (self.server.user, self.server.password)
        if scheme.lower() != "basic" or (user, password) != expected:
            self._send(
                401,
                {
                    "message": "Invalid username or password",
                    "messageId": "password-auth.failed",
                    "statusCode": 401,
                    "traceID": "",
                },
            )
            return False
        return True

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        if method == "GET" and path == "/api/health":
            self._send(200, {"commit": "fake", "database": "ok", "version": VERSION})
            return
        if method == "GET" and path == "/__fake__/state":
            self._send(200, self.server.state.snapshot())
            return
        if method == "GET" and (path in ("/", "/login") or path.startswith("/d/")):
            self._page()
            return
        if not self._authorized():
            return
        body = self._json() if method in ("POST", "PUT") else None
        if body is ValueError:
            self._send(400, {"message": "bad request data"})
            return
        state = self.server.state
        with state.lock:
            status, answer = self._dispatch(method, path, body, parts.query)
            if method in ("POST", "PUT") and status == 200:
                state.writes.append(f"{method} {path}")
        self._send(status, answer)

    def _dispatch(self, method: str, path: str, body: Any, query: str = "") -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts == ["api", "search"] and method == "GET":
            params = parse_qs(query)
            if params.get("type", ["dash-db"])[0] != "dash-db":
                return 200, []  # this fake has no folders
            return self.search(params.get("query", [""])[0])
        if parts[:2] == ["api", "datasources"]:
            rest = parts[2:]
            if method == "POST" and not rest:
                return self.create_datasource(body)
            if len(rest) == 2 and rest[0] == "uid" and method == "GET":
                return self.get_datasource(uid=rest[1])
            if len(rest) == 2 and rest[0] == "name" and method == "GET":
                return self.get_datasource(name=rest[1])
            if len(rest) == 2 and rest[0] == "uid" and method == "PUT":
                return self.update_datasource(rest[1], body)
            if not rest and method == "GET":
                return 200, list(self.server.state.datasources.values())
        if parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4 and method == "GET":
            return self.get_dashboard(parts[3])
        if parts == ["api", "dashboards", "db"] and method == "POST":
            return self.save_dashboard(body)
        if parts == ["api", "dashboards", "import"] and method == "POST":
            return self.import_dashboard(body)
        return 404, {"message": "Not found"}

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    # -- datasources ------------------------------------------------------------------------

    def get_datasource(self, uid: str = "", name: str = "") -> tuple[int, Any]:
        for ds in self.server.state.datasources.values():
            if (uid and ds["uid"] == uid) or (name and ds["name"] == name):
                return 200, ds
        return 404, {"message": "Data source not found"}

    def create_datasource(self, body: Any) -> tuple[int, Any]:
        state = self.server.state
        if not isinstance(body, dict) or not body.get("name") or not body.get("type"):
            return 400, {"message": "bad request data"}
        if any(ds["name"] == body["name"] for ds in state.datasources.values()):
            return 409, {"message": "data source with the same name already exists"}
        if body.get("uid") and not _valid_uid(body["uid"]):
            return 400, _BAD_DS_UID
        uid = body.get("uid") or _new_uid(state.next_id)
        if uid in state.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        ds_id = state.new_id()
        ds = {
            "id": ds_id,
            "uid": uid,
            "orgId": 1,
            "name": body["name"],
            "type": body["type"],
            "typeLogoUrl": "",
            "access": body.get("access", "proxy"),
            "url": body.get("url", ""),
            "user": body.get("user", ""),
            "database": body.get("database", ""),
            "basicAuth": bool(body.get("basicAuth", False)),
            "basicAuthUser": body.get("basicAuthUser", ""),
            "withCredentials": False,
            "isDefault": bool(body.get("isDefault", False)),
            "jsonData": body.get("jsonData") or {},
            "secureJsonFields": {},
            "version": 1,
            "readOnly": False,
        }
        state.datasources[uid] = ds
        answer = {"datasource": ds, "id": ds_id, "message": "Datasource added"}
        return 200, {**answer, "name": ds["name"]}

    def update_datasource(self, uid: str, body: Any) -> tuple[int, Any]:
        state = self.server.state
        current = state.datasources.get(uid)
        if current is None:
            return 404, {"message": "Data source not found"}
        if not isinstance(body, dict) or not body.get("name") or not body.get("type"):
            return 400, {"message": "bad request data"}
        if current.get("readOnly"):
            return 403, {"message": "Cannot update read-only data source"}
        sent = body.get("version") or 0
        if not isinstance(sent, int) or isinstance(sent, bool):
            return 400, {"message": "bad request data"}
        for other in state.datasources.values():
            if other is not current and other["name"] == body["name"]:
                return 409, {
                    "message": "Failed to update datasource: "
                    "data source with the same name already exists"
                }
        if body.get("uid") and not _valid_uid(body["uid"]):
            return 400, _BAD_DS_UID
        # Grafana stores the sent version + 1, updating only where the stored one is lower:
        # an older version conflicts, a newer one is taken, none skips the check.
        if sent and current["version"] > sent:
            return 409, {
                "message": "Datasource has already been updated by someone else. "
                "Please reload and try again"
            }
        new_uid = body.get("uid") or uid
        if new_uid != uid and new_uid in state.datasources:
            return 409, {"message": "data source with the same uid already exists"}
        updated = {**current}
        for key in (
            "name",
            "type",
            "access",
            "url",
            "user",
            "database",
            "basicAuth",
            "basicAuthUser",
            "isDefault",
            "jsonData",
        ):
            if key in body:
                updated[key] = body[key] if body[key] is not None else current[key]
        updated["uid"] = new_uid
        updated["version"] = sent + 1
        del state.datasources[uid]
        state.datasources[new_uid] = updated
        return 200, {
            "datasource": updated,
            "id": updated["id"],
            "message": "Datasource updated",
            "name": updated["name"],
        }

    # -- dashboards -------------------------------------------------------------------------

    def get_dashboard(self, uid: str) -> tuple[int, Any]:
        entry = self.server.state.dashboards.get(uid)
        if entry is None:
            return 404, {"message": "Dashboard not found"}
        dash = entry["dashboard"]
        meta = {
            "slug": slug(dash["title"]),
            "url": f"/d/{uid}/{slug(dash['title'])}",
            "folderUid": entry["folderUid"],
            "version": dash["version"],
            "provisioned": False,
        }
        return 200, {"dashboard": dash, "meta": meta}

    def _save(self, dash: Any, overwrite: bool, folder_uid: str) -> tuple[int, Any]:
        """Grafana's save: by uid first, then by exact title within the folder.

        Like Grafana's getExistingDashboardByTitleAndFolder (`title=?` in SQLite, its default
        database: case-sensitive, and no slug), a save whose title is another dashboard's in
        the same folder fails with 412 name-exists, or, with `overwrite`, takes that dashboard
        over: it keeps the existing id, uid and version line.
        """
        state = self.server.state
        if not isinstance(dash, dict):
            return 400, {"message": "bad request data"}
        title = str(dash.get("title") or "").strip()
        if not title:
            return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
        given_uid = str(dash.get("uid") or "")
        if not _UID.fullmatch(given_uid):
            return 400, {"message": "uid contains illegal characters"}
        if len(given_uid) > MAX_UID:
            return 400, {"message": "uid too long, max 40 characters"}
        existing = state.dashboards.get(given_uid) if given_uid else None
        stale = existing is not None and dash.get("version") != existing["dashboard"]["version"]
        if stale and not overwrite:
            return 412, {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        same_title = next(
            (
                entry
                for entry in state.dashboards.values()
                if entry is not existing
                and entry["folderUid"] == folder_uid
                and entry["dashboard"]["title"] == title
            ),
            None,
        )
        if same_title is not None:
            if not overwrite:
                return 412, {
                    "message": "A dashboard with the same name in the folder already exists",
                    "status": "name-exists",
                }
            existing = same_title
        target = existing["dashboard"] if existing else None
        uid = target["uid"] if target else given_uid or _new_uid(state.next_id)
        stored = copy.deepcopy(dash)
        stored["title"] = title
        stored["uid"] = uid
        stored["id"] = target["id"] if target else state.new_id()
        stored["version"] = target["version"] + 1 if target else 1
        state.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid}
        return 200, stored

    def search(self, query: str) -> tuple[int, Any]:
        """`GET /api/search?query=&type=dash-db`: dashboards whose title contains `query`."""
        hits = []
        for entry in self.server.state.dashboards.values():
            dash = entry["dashboard"]
            if query.lower() not in dash["title"].lower():
                continue
            dslug = slug(dash["title"])
            hit = {
                "id": dash["id"],
                "uid": dash["uid"],
                "orgId": 1,
                "title": dash["title"],
                "uri": f"db/{dslug}",
                "url": f"/d/{dash['uid']}/{dslug}",
                "slug": "",
                "type": "dash-db",
                "tags": dash.get("tags") or [],
                "isStarred": False,
                "sortMeta": 0,
            }
            if entry["folderUid"]:  # dashboards in the General folder carry no folder fields
                hit.update(folderUid=entry["folderUid"], folderTitle=entry["folderUid"])
            hits.append(hit)
        return 200, sorted(hits, key=lambda h: h["title"].lower())

    def save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, {"message": "bad request data"}
        status, stored = self._save(
            body.get("dashboard"), bool(body.get("overwrite")), body.get("folderUid") or ""
        )
        if status != 200:
            return status, stored
        dslug = slug(stored["title"])
        return 200, {
            "id": stored["id"],
            "uid": stored["uid"],
            "url": f"/d/{stored['uid']}/{dslug}",
            "status": "success",
            "version": stored["version"],
            "slug": dslug,
        }

    def import_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return 400, {"message": "bad request data"}
        template = body["dashboard"]
        given = {(i.get("name"), i.get("type")): i for i in body.get("inputs") or []}
        for needed in template.get("__inputs", []):
            key = (needed.get("name"), needed.get("type"))
            if key not in given and (("*", needed.get("type")) not in given):
                return 400, {
                    "message": f"dashboard import failed: missing dashboard input variable "
                    f"{needed.get('name')}"
                }
        values = {f"${{{n}}}": i.get("value", "") for (n, _t), i in given.items()}
        dash = _evaluate(template, values)
        for name in _EXPORT_ONLY:  # "no need to keep these in the stored dashboard JSON"
            dash.pop(name, None)
        status, stored = self._save(dash, bool(body.get("overwrite")), body.get("folderUid") or "")
        if status != 200:
            return status, stored
        dslug = slug(stored["title"])
        return 200, {
            "uid": stored["uid"],
            "pluginId": "",
            "title": stored["title"],
            "imported": True,
            "importedUri": f"db/{dslug}",
            "importedUrl": f"/d/{stored['uid']}/{dslug}",
            "slug": dslug,
            "dashboardId": stored["id"],
            "folderId": 0,
            "folderUid": body.get("folderUid") or "",
            "importedRevision": 1,
            "revision": 1,
            "description": "",
            "path": "",
            "removed": False,
        }


def _valid_uid(uid: Any) -> bool:
    return isinstance(uid, str) and bool(_UID.fullmatch(uid)) and len(uid) <= MAX_UID


def _evaluate(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Grafana's DashTemplateEvaluator: substitute `${NAME}` in strings, drop `__inputs`.

    Written apart from the client's copy on purpose (an explicit stack, not recursion), so a
    mistake in one is not repeated in the other and the tests can tell.
    """
    holder: list[Any] = [None]
    pending: list[tuple[Any, Any, Any]] = [(template, holder, 0)]
    while pending:
        source, target, key = pending.pop()
        node: Any
        if isinstance(source, dict):
            node = {k: None for k in source if k != "__inputs"}  # keeps the key order
            pending += [(source[k], node, k) for k in node]
        elif isinstance(source, list):
            node = [None] * len(source)
            pending += [(v, node, i) for i, v in enumerate(source)]
        elif isinstance(source, str):
            node = _VAR.sub(lambda m: values.get(m.group(0), m.group(0)), source)
        else:
            node = source
        target[key] = node
    result = holder[0]
    assert isinstance(result, dict)
    return result


class FakeGrafanaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, user: str = "admin", password: str = ""
    ) -> None:
        if not password:
            # Like the stack, which never keeps Grafana's admin/admin: no default password.
            raise ValueError("FakeGrafanaServer needs an admin password")
        super().__init__((host, port), Handler)
        self.user = user
        self.password = password
        self.state = State()
        self.verbose = False
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start(self) -> FakeGrafanaServer:
        """Serve in a background thread (for tests)."""
        # A short poll interval: stop() (shutdown) waits for the loop to notice.
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


__all__ = ["FakeGrafanaServer", "slug"]


def grafana_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The GF_* settings, with Grafana's `<NAME>__FILE` form read from the named file."""
    env = dict(environ)
    for key, path in environ.items():
        if key.startswith("GF_") and key.endswith("__FILE") and path:
            with open(path, encoding="utf-8") as fh:
                env[key.removesuffix("__FILE")] = fh.read().rstrip("\r\n")
    return env


def main(argv: Sequence[str] | None = None) -> int:
    env = grafana_env(os.environ)
    parser = argparse.ArgumentParser(description="Fake Grafana HTTP API for tests and e2e runs")
    # (flag, Grafana's variable, default, help): the same variables the real image reads.
    options = (
        ("--host", "GF_SERVER_HTTP_ADDR", "0.0.0.0", "listen address (all interfaces)"),
        ("--port", "GF_SERVER_HTTP_PORT", "3000", "port to listen on (3000)"),
        ("--user", "GF_SECURITY_ADMIN_USER", "admin", "admin user"),
        ("--password", "GF_SECURITY_ADMIN_PASSWORD", "", "admin password; required"),
    )
    for flag, var, default, text in options:
        kind = int if flag == "--port" else str
        parser.add_argument(
            flag, type=kind, default=kind(env.get(var) or default), help=f"{text} ({var})"
        )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if not args.password:
        parser.error(
            "no admin password: pass --password or set GF_SECURITY_ADMIN_PASSWORD "
            "(there is no admin/admin default)"
        )
    server = FakeGrafanaServer(args.host, args.port, args.user, args.password)
    server.verbose = args.verbose
    print(f"fake grafana listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
