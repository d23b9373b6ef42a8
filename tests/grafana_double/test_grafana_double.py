# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the Grafana test double: each starts a real server on a free port."""

import base64
import calendar
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import grafana_double as gd  # noqa: E402 pylint: disable=wrong-import-position

ADMIN_PASSWORD = "not-admin-3f9"


def write_ini(tmp_path, extra=""):
    ini = tmp_path / "grafana.ini"
    ini.write_text(textwrap.dedent("""\
        ; a comment as in the packaged grafana.ini
        app_mode = production
        [server]
        http_addr = 127.0.0.1
        http_port = 0
        [paths]
        data = {data}
        provisioning = {prov}
        [security]
        admin_user = admin
        admin_password = {pw}
        [users]
        allow_sign_up = false
        """).format(data=tmp_path / "data", prov=tmp_path / "provisioning", pw=ADMIN_PASSWORD) + extra)
    (tmp_path / "provisioning" / "datasources").mkdir(parents=True, exist_ok=True)
    (tmp_path / "provisioning" / "dashboards").mkdir(parents=True, exist_ok=True)
    return str(ini)


class Client:
    def __init__(self, url, user="admin", password=ADMIN_PASSWORD, token=None):
        self.url, self.user, self.password, self.token = url, user, password, token

    def call(self, method, path, body=None, auth=True, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        elif auth and self.user is not None:
            cred = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
            req.add_header("Authorization", "Basic " + cred)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                status, hdrs = resp.status, resp.headers
        except urllib.error.HTTPError as exc:
            raw, status, hdrs = exc.read(), exc.code, exc.headers
        ctype = hdrs.get("Content-Type", "")
        return status, (json.loads(raw) if ctype.startswith("application/json") else raw.decode())

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def server(tmp_path):
    started = []

    def start(extra_ini="", **kw):
        ini = write_ini(tmp_path, extra_ini) if not os.path.exists(tmp_path / "grafana.ini") or extra_ini else \
            str(tmp_path / "grafana.ini")
        d = gd.GrafanaDouble(config_path=ini, homepath=str(tmp_path), **kw).start()
        started.append(d)
        return d, Client(d.url)
    yield start
    for d in started:
        d.stop()


def make_token(api, role="Admin", name="ansible"):
    status, sa = api.post("/api/serviceaccounts", {"name": name, "role": role})
    assert status == 201, sa
    status, tok = api.post("/api/serviceaccounts/%d/tokens" % sa["id"], {"name": name + "-token"})
    assert status == 200, tok
    return sa, tok["key"]


# ---------------------------------------------------------------- health, auth
def test_health_is_public_and_pretty(server):
    d, api = server()
    req = urllib.request.urlopen(d.url + "/api/health", timeout=5)
    raw = req.read().decode()
    assert req.status == 200
    assert req.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert json.loads(raw) == {"commit": "double", "database": "ok", "version": gd.VERSION}
    assert raw.startswith('{\n  "commit"')


def test_health_hides_version(server):
    d, _ = server("[auth.anonymous]\nhide_version = true\n")
    with urllib.request.urlopen(d.url + "/api/health", timeout=5) as resp:
        assert json.loads(resp.read()) == {"database": "ok"}


def test_basic_auth(server):
    d, api = server()
    status, user = api.get("/api/user")
    assert status == 200 and user["login"] == "admin" and user["isGrafanaAdmin"] is True
    status, body = Client(d.url, "admin", "admin").get("/api/user")
    assert status == 401
    assert body["messageId"] == "password-auth.failed" and body["message"] == "Invalid username or password"
    status, body = api.get("/api/search", auth=False)
    assert status == 401 and body["messageId"] == "auth.unauthorized"


def test_login_session_cookie(server):
    d, api = server()
    status, body = api.post("/login", {"user": "admin", "password": "wrong"}, auth=False)
    assert status == 401
    req = urllib.request.Request(d.url + "/login", method="POST",
                                 data=json.dumps({"user": "admin", "password": ADMIN_PASSWORD}).encode())
    with urllib.request.urlopen(req, timeout=5) as resp:
        cookie = resp.headers["Set-Cookie"].split(";")[0]
    status, user = api.get("/api/user", auth=False, headers={"Cookie": cookie})
    assert status == 200 and user["login"] == "admin"


def test_signup_disabled_and_enabled(server, tmp_path):
    d, api = server()
    status, body = api.post("/api/user/signup", {"email": "x@example.com"}, auth=False)
    assert (status, body) == (401, {"message": "User signup is disabled"})
    d.stop()
    d2, api2 = server("[users]\nallow_sign_up = true\n")
    assert api2.post("/api/user/signup", {"email": "x@example.com"}, auth=False)[0] == 200


def test_anonymous_viewer(server):
    d, api = server("[auth.anonymous]\nenabled = true\n")
    assert api.get("/api/search", auth=False)[0] == 200
    status, body = api.post("/api/dashboards/db", {"dashboard": {"title": "x"}}, auth=False)
    assert status == 403 and body["title"] == "Access denied"


def test_service_account_and_tokens(server):
    d, api = server()
    sa, key = make_token(api)
    assert sa["login"] == "sa-1-ansible" and sa["role"] == "Admin" and sa["tokens"] == 0
    assert key.startswith("glsa_") and len(key.split("_")[1]) == 32
    tok = Client(d.url, token=key)
    assert tok.get("/api/search")[0] == 200
    status, me = tok.get("/api/user")
    assert status == 200 and me["login"] == "sa-1-ansible"
    # duplicate name
    status, body = api.post("/api/serviceaccounts", {"name": "ansible", "role": "Admin"})
    assert status == 400 and body["messageId"] == "serviceaccounts.ErrAlreadyExists"
    # search finds it, token count
    status, found = api.get("/api/serviceaccounts/search?query=ANSI")
    assert status == 200 and found["totalCount"] == 1 and found["serviceAccounts"][0]["tokens"] == 1
    status, tokens = api.get("/api/serviceaccounts/%d/tokens" % sa["id"])
    assert [t["name"] for t in tokens] == ["ansible-token"] and "key" not in tokens[0]
    # role defaults to Viewer; a viewer token cannot write
    status, viewer = api.post("/api/serviceaccounts", {"name": "reader"})
    assert status == 201 and viewer["role"] == "Viewer"
    status, vt = api.post("/api/serviceaccounts/%d/tokens" % viewer["id"], {"name": "r"})
    vapi = Client(d.url, token=vt["key"])
    status, body = vapi.post("/api/dashboards/db", {"dashboard": {"title": "nope"}})
    assert status == 403 and "dashboards:create" in body["message"]
    status, body = vapi.post("/api/datasources", {"name": "p", "type": "prometheus", "access": "proxy"})
    assert status == 403
    # a viewer token cannot create an admin service account
    assert vapi.post("/api/serviceaccounts", {"name": "esc", "role": "Admin"})[0] == 403
    # bad, deleted and expired tokens
    assert Client(d.url, token="glsa_nope_00000000").get("/api/search")[1]["messageId"] == "api-key.invalid"
    status, tokens = api.get("/api/serviceaccounts/%d/tokens" % viewer["id"])
    assert api.delete("/api/serviceaccounts/%d/tokens/%d" % (viewer["id"], tokens[0]["id"]))[0] == 200
    assert vapi.get("/api/search")[0] == 401
    status, short = api.post("/api/serviceaccounts/%d/tokens" % sa["id"], {"name": "short", "secondsToLive": 1})
    time.sleep(1.2)
    status, body = Client(d.url, token=short["key"]).get("/api/search")
    assert status == 401 and body["messageId"] == "api-key.expired"
    # unknown account
    assert api.get("/api/serviceaccounts/999")[0] == 404
    assert api.delete("/api/serviceaccounts/%d" % viewer["id"])[1] == {"message": "Service account deleted"}


def test_token_expiry_fields_as_grafana_lists_them(server):
    # api/token.go ListTokens: expiration as RFC 3339 (null when it never expires), hasExpired, and
    # secondsUntilExpiration only for a token that expires within seven days (0 otherwise)
    d, api = server()
    sa, _ = make_token(api)
    tokens = "/api/serviceaccounts/%d/tokens" % sa["id"]
    assert api.post(tokens, {"name": "month", "secondsToLive": 30 * 86400})[0] == 200
    assert api.post(tokens, {"name": "day", "secondsToLive": 86400})[0] == 200
    status, listed = api.get(tokens)
    by_name = {t["name"]: t for t in listed}
    assert set(by_name["day"]) == {"id", "name", "created", "lastUsedAt", "expiration", "secondsUntilExpiration",
                                   "hasExpired", "isRevoked"}
    never, month, day = by_name["ansible-token"], by_name["month"], by_name["day"]
    assert never["expiration"] is None and never["secondsUntilExpiration"] == 0 and never["hasExpired"] is False
    expires = calendar.timegm(time.strptime(month["expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expires - time.time() - 30 * 86400) < 5
    assert month["secondsUntilExpiration"] == 0 and month["hasExpired"] is False and month["isRevoked"] is False
    assert 86400 - 5 < day["secondsUntilExpiration"] <= 86400
    # a deleted token is refused; deleting it again is a 404
    status, body = api.delete("%s/%d" % (tokens, day["id"]))
    assert status == 200 and body == {"message": "Service account token deleted"}
    assert api.delete("%s/%d" % (tokens, day["id"]))[0] == 404


def test_token_lifetime_limit(server):
    d, api = server(extra_ini="[auth]\napi_key_max_seconds_to_live = 3600\n")
    status, sa = api.post("/api/serviceaccounts", {"name": "limited", "role": "Editor"})
    tokens = "/api/serviceaccounts/%d/tokens" % sa["id"]
    status, body = api.post(tokens, {"name": "forever"})
    assert status == 400 and body["message"] == "Number of seconds before expiration should be set"
    status, body = api.post(tokens, {"name": "long", "secondsToLive": 7200})
    assert status == 400 and body["message"] == "Number of seconds before expiration is greater than the global limit"
    assert api.post(tokens, {"name": "ok", "secondsToLive": 3600})[0] == 200


# ---------------------------------------------------------------- datasources
PROM = {"name": "Prometheus", "type": "prometheus", "access": "proxy", "url": "http://prom:9090", "uid": "prom",
        "jsonData": {"httpMethod": "POST"}, "secureJsonData": {"httpHeaderValue1": "s3cret"}}


def test_datasource_crud(server):
    d, api = server()
    status, body = api.post("/api/datasources", PROM)
    assert status == 200 and body["message"] == "Datasource added" and body["name"] == "Prometheus"
    ds = body["datasource"]
    assert ds["isDefault"] is True  # the first datasource becomes the default
    assert ds["version"] == 1 and ds["readOnly"] is False
    assert ds["secureJsonFields"] == {"httpHeaderValue1": True} and "secureJsonData" not in ds
    assert "s3cret" not in json.dumps(api.get("/api/datasources/uid/prom")[1])
    assert api.get("/api/datasources/name/Prometheus")[1]["uid"] == "prom"
    assert api.get("/api/datasources/%d" % ds["id"])[1]["uid"] == "prom"
    assert api.get("/api/datasources/id/Prometheus")[1] == {"id": ds["id"]}
    status, listing = api.get("/api/datasources")
    assert listing[0]["typeName"] == "Prometheus" and "version" not in listing[0]
    # conflicts and bad input
    assert api.post("/api/datasources", PROM)[1] == {"message": "data source with the same name already exists",
                                                     "traceID": ""}
    assert api.post("/api/datasources", dict(PROM, name="other"))[0] == 409
    assert api.post("/api/datasources", {"name": "x", "type": "prometheus"})[1] == {"message": "bad request data"}
    assert api.post("/api/datasources", dict(PROM, name="y", uid="bad uid!"))[1]["messageId"] == \
        "datasource.uidInvalid"
    # update: secure fields merged, version semantics
    upd = {"name": "Prometheus", "type": "prometheus", "access": "proxy", "url": "http://prom2:9090",
           "jsonData": {"httpMethod": "GET"}, "secureJsonData": {"basicAuthPassword": "pw"}, "version": 1}
    status, body = api.put("/api/datasources/uid/prom", upd)
    assert status == 200 and body["message"] == "Datasource updated"
    assert body["datasource"]["secureJsonFields"] == {"basicAuthPassword": True, "httpHeaderValue1": True}
    assert body["datasource"]["version"] == 2 and body["datasource"]["url"] == "http://prom2:9090"
    status, body = api.put("/api/datasources/uid/prom", upd)  # stale version 1 < 2
    assert status == 409 and body["message"].startswith("Datasource has already been updated")
    status, body = api.put("/api/datasources/uid/prom", dict(upd, version=None))
    assert status == 200 and body["datasource"]["version"] == 1  # omitted version: stored as 0 + 1
    # second datasource, default moves
    status, body = api.post("/api/datasources", {"name": "Other", "type": "loki", "access": "proxy",
                                                 "isDefault": True})
    assert body["datasource"]["isDefault"] is True
    assert api.get("/api/datasources/uid/prom")[1]["isDefault"] is False
    # delete
    assert api.delete("/api/datasources/uid/prom")[1] == {"message": "Data source deleted", "id": ds["id"]}
    assert api.get("/api/datasources/uid/prom") == (404, {"message": "Data source not found"})
    assert api.delete("/api/datasources/name/Other")[0] == 200
    assert api.get("/api/datasources/abc")[0] == 400


def test_provisioned_datasource_is_read_only(server, tmp_path, monkeypatch):
    monkeypatch.setattr(gd, "PREFER_PYYAML", False)  # a target without PyYAML
    write_ini(tmp_path)
    monkeypatch.setenv("PROM_URL", "http://from-env:9090")
    (tmp_path / "provisioning" / "datasources" / "ds.yaml").write_text(textwrap.dedent("""\
        apiVersion: 1
        datasources:
          - name: Prom
            type: prometheus
            access: proxy
            uid: prom-prov
            url: $PROM_URL
            isDefault: true
            jsonData:
              timeInterval: "15s"
            secureJsonData:
              basicAuthPassword: 'pa$$word'
          - name: Editable
            type: prometheus
            url: http://x:9090
            editable: true
        """))
    d, api = server()
    status, ds = api.get("/api/datasources/uid/prom-prov")
    assert ds["readOnly"] is True and ds["url"] == "http://from-env:9090" and ds["access"] == "proxy"
    assert ds["jsonData"] == {"timeInterval": "15s"} and ds["secureJsonFields"] == {"basicAuthPassword": True}
    body = dict(PROM, name="Prom")
    assert api.put("/api/datasources/uid/prom-prov", body) == (403, {"message": "Cannot update read-only data source"})
    assert api.delete("/api/datasources/uid/prom-prov") == (403, {"message": "Cannot delete read-only data source"})
    assert api.get("/api/datasources/name/Editable")[1]["readOnly"] is False


# ---------------------------------------------------------------- folders, dashboards
def test_folders(server):
    d, api = server()
    status, f = api.post("/api/folders", {"uid": "vllm", "title": "vLLM"})
    assert status == 200 and f["version"] == 1 and f["url"] == "/dashboards/f/vllm/vllm"
    # a uid that exists: 412 from 9.0 through 12.x (legacy version check; PR grafana/grafana#107992)
    assert api.post("/api/folders", {"uid": "vllm", "title": "Again"}) == (
        412, {"status": "version-mismatch", "message": "the folder has been changed by someone else"})
    assert api.post("/api/folders", {"title": " "})[0] == 400
    assert api.get("/api/folders/nope") == (404, {"status": "not-found", "message": "folder not found"})
    assert api.put("/api/folders/vllm", {"title": "vLLM 2", "version": 7})[1]["status"] == "version-mismatch"
    status, f2 = api.put("/api/folders/vllm", {"title": "vLLM 2", "version": 1})
    assert status == 200 and f2["version"] == 2 and f2["title"] == "vLLM 2"
    assert api.put("/api/folders/vllm", {"title": "vLLM 3", "overwrite": True})[1]["version"] == 3
    assert [x["uid"] for x in api.get("/api/folders")[1]] == ["vllm"]
    api.post("/api/dashboards/db", {"dashboard": {"title": "in folder", "uid": "inf"}, "folderUid": "vllm"})
    assert api.delete("/api/folders/vllm") == (200, {"message": "Folder deleted"})
    assert api.get("/api/dashboards/uid/inf")[0] == 404  # a folder's dashboards go with it


def test_dashboard_save_semantics(server):
    d, api = server()
    api.post("/api/folders", {"uid": "f1", "title": "F1"})
    dash = {"title": "  vLLM fleet ", "uid": "fleet", "refresh": "1s", "panels": [], "tags": ["vllm"]}
    status, body = api.post("/api/dashboards/db", {"dashboard": dash, "folderUid": "f1", "message": "first"})
    assert status == 200
    assert body == {"id": body["id"], "uid": "fleet", "url": "/d/fleet/vllm-fleet", "status": "success",
                    "version": 1, "slug": "vllm-fleet", "folderUid": "f1"}
    status, got = api.get("/api/dashboards/uid/fleet")
    assert got["dashboard"]["title"] == "vLLM fleet" and got["dashboard"]["refresh"] == "5s"
    assert got["dashboard"]["version"] == 1 and got["dashboard"]["id"] == body["id"]
    meta = got["meta"]
    assert meta["folderUid"] == "f1" and meta["folderTitle"] == "F1" and meta["provisioned"] is False
    # same uid without version: 412 unless overwrite
    status, body = api.post("/api/dashboards/db", {"dashboard": dash, "folderUid": "f1"})
    assert (status, body) == (412, {"status": "version-mismatch",
                                    "message": "The dashboard has been changed by someone else"})
    assert api.post("/api/dashboards/db", {"dashboard": dict(dash, version=1), "folderUid": "f1"})[1]["version"] == 2
    status, body = api.post("/api/dashboards/db", {"dashboard": dash, "overwrite": True})
    assert status == 200 and body["version"] == 3 and "folderUid" not in body  # moved to General
    assert api.get("/api/dashboards/uid/fleet")[1]["meta"]["folderTitle"] == "General"
    versions = api.get("/api/dashboards/uid/fleet/versions")[1]["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1] and versions[-1]["message"] == "first"
    # errors
    assert api.post("/api/dashboards/db", {"dashboard": {"title": ""}})[1]["status"] == "empty-name"
    assert api.post("/api/dashboards/db", {"dashboard": {"title": "x", "uid": "a" * 41}})[0] == 400
    assert api.post("/api/dashboards/db", {"dashboard": {"title": "x", "uid": "a b"}})[0] == 400
    assert api.post("/api/dashboards/db", {"dashboard": {"title": "x"}, "folderUid": "nope"}) == \
        (400, {"message": "folder not found"})
    assert api.post("/api/dashboards/db", {"dashboard": {"title": "x", "id": 999}})[0] == 404
    assert api.post("/api/dashboards/db", {"nodash": 1}) == (400, {"message": "bad request data"})
    # 12.x: titles need not be unique
    assert api.post("/api/dashboards/db", {"dashboard": {"title": "vLLM fleet", "uid": "other"}})[0] == 200
    # search
    status, hits = api.get("/api/search?query=FLEET&type=dash-db")
    assert {h["uid"] for h in hits} == {"fleet", "other"}
    assert [h["uid"] for h in api.get("/api/search?tag=vllm")[1]] == ["fleet"]
    assert [h["uid"] for h in api.get("/api/search?dashboardUIDs=other")[1]] == ["other"]
    assert [h["type"] for h in api.get("/api/search")[1]][0] == "dash-folder"
    # delete
    status, body = api.delete("/api/dashboards/uid/fleet")
    assert body == {"title": "vLLM fleet", "message": "Dashboard vLLM fleet deleted", "uid": "fleet"}
    assert api.get("/api/dashboards/uid/fleet") == (404, {"message": "Dashboard not found", "traceID": ""})
    assert api.delete("/api/dashboards/uid/f1")[0] == 400  # a folder uid


def test_dashboard_unique_titles_before_11_3(server):
    d, api = server("[test_double]\nunique_titles = true\n")
    assert api.post("/api/dashboards/db", {"dashboard": {"title": "Same", "uid": "a"}})[0] == 200
    status, body = api.post("/api/dashboards/db", {"dashboard": {"title": "same", "uid": "b"}})
    assert (status, body["status"]) == (412, "name-exists")
    status, body = api.post("/api/dashboards/db", {"dashboard": {"title": "Same", "uid": "b"}, "overwrite": True})
    assert status == 200 and body["version"] == 2
    assert api.post("/api/folders", {"title": "F"})[0] == 200
    assert api.post("/api/folders", {"title": "F"})[0] == 409


def test_import_with_inputs(server):
    d, api = server()
    api.post("/api/datasources", PROM)
    dash = {"__inputs": [{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}],
            "__requires": [{"type": "grafana", "id": "grafana"}], "title": "Imported", "uid": "imp",
            "panels": [{"datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, "title": "${KEEP}"}]}
    inputs = [{"name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus", "value": "prom"}]
    status, body = api.post("/api/dashboards/import", {"dashboard": dash, "inputs": inputs, "overwrite": True})
    assert status == 200 and body["imported"] is True and body["uid"] == "imp"
    assert body["importedUrl"] == "/d/imp/imported"
    stored = api.get("/api/dashboards/uid/imp")[1]["dashboard"]
    assert "__inputs" not in stored and "__requires" not in stored
    assert stored["panels"][0]["datasource"]["uid"] == "prom" and stored["panels"][0]["title"] == "${KEEP}"
    status, body = api.post("/api/dashboards/import", {"dashboard": dash, "inputs": [], "overwrite": True})
    assert status == 500 and api.get("/api/dashboards/uid/imp")[1]["dashboard"]["version"] == 1
    assert api.post("/api/dashboards/import", {"inputs": []})[0] == 422


def test_provisioned_dashboards(server, tmp_path, monkeypatch):
    monkeypatch.setattr(gd, "PREFER_PYYAML", False)
    write_ini(tmp_path)
    dash_dir = tmp_path / "dash"
    dash_dir.mkdir()
    (dash_dir / "fleet.json").write_text(json.dumps({"title": "Fleet", "uid": "prov-fleet", "panels": []}))
    (dash_dir / "broken.json").write_text("{not json")
    (tmp_path / "provisioning" / "dashboards" / "p.yaml").write_text(textwrap.dedent("""\
        apiVersion: 1
        providers:
          - name: vllm
            folder: vLLM
            folderUid: vllm-folder
            type: file
            updateIntervalSeconds: 1
            options:
              path: {path}
          - name: editable
            allowUiUpdates: true
            options:
              path: {path2}
        """).format(path=dash_dir, path2=tmp_path / "dash2"))
    (tmp_path / "dash2").mkdir()
    (tmp_path / "dash2" / "e.json").write_text(json.dumps({"title": "Editable", "uid": "ed"}))
    d, api = server()
    status, got = api.get("/api/dashboards/uid/prov-fleet")
    assert status == 200 and got["meta"]["provisioned"] is True
    assert got["meta"]["provisionedExternalId"] == "fleet.json" and got["meta"]["folderUid"] == "vllm-folder"
    body = {"dashboard": dict(got["dashboard"]), "overwrite": True}
    assert api.post("/api/dashboards/db", body) == (400, {"message": "Cannot save provisioned dashboard"})
    assert api.delete("/api/dashboards/uid/prov-fleet")[1]["message"] == "provisioned dashboard cannot be deleted"
    status, ed = api.get("/api/dashboards/uid/ed")
    assert ed["meta"]["provisioned"] is False and ed["meta"]["provisionedExternalId"] == "e.json"
    assert api.post("/api/dashboards/db", {"dashboard": ed["dashboard"]})[0] == 200
    # file changes are picked up by the poller; removed files remove their dashboard
    (dash_dir / "fleet.json").write_text(json.dumps({"title": "Fleet v2", "uid": "prov-fleet"}))
    (dash_dir / "new.json").write_text(json.dumps({"title": "New", "uid": "prov-new"}))
    deadline = time.time() + 15
    while time.time() < deadline and api.get("/api/dashboards/uid/prov-new")[0] != 200:
        time.sleep(0.3)
    assert api.get("/api/dashboards/uid/prov-fleet")[1]["dashboard"]["title"] == "Fleet v2"
    (dash_dir / "new.json").unlink()
    deadline = time.time() + 15
    while time.time() < deadline and api.get("/api/dashboards/uid/prov-new")[0] != 404:
        time.sleep(0.3)
    assert api.get("/api/dashboards/uid/prov-new")[0] == 404


# ---------------------------------------------------------------- persistence, CLI, process
def test_state_persists_and_admin_password_is_first_start_only(server, tmp_path):
    d, api = server()
    api.post("/api/datasources", PROM)
    api.post("/api/dashboards/db", {"dashboard": {"title": "Keep", "uid": "keep"}})
    sa, key = make_token(api)
    d.stop()
    # a changed admin_password in grafana.ini has no effect once the database exists (as in Grafana)
    ini = tmp_path / "grafana.ini"
    ini.write_text(ini.read_text().replace(ADMIN_PASSWORD, "changed-later"))
    d2 = gd.GrafanaDouble(config_path=str(ini), homepath=str(tmp_path)).start()
    try:
        api2 = Client(d2.url)
        assert api2.get("/api/datasources/uid/prom")[1]["secureJsonFields"] == {"httpHeaderValue1": True}
        assert api2.get("/api/dashboards/uid/keep")[1]["dashboard"]["version"] == 1
        assert Client(d2.url, token=key).get("/api/search")[0] == 200
        assert Client(d2.url, "admin", "changed-later").get("/api/user")[0] == 401
        state = tmp_path / "data" / gd.STATE_FILE
        assert oct(state.stat().st_mode & 0o777) == "0o600"
        assert ADMIN_PASSWORD not in state.read_text() and key not in state.read_text()
        # grafana cli admin reset-admin-password, while the server runs
        out = subprocess.run([sys.executable, os.path.join(HERE, "grafana_double.py"), "cli", "--config", str(ini),
                              "--homepath", str(tmp_path), "admin", "reset-admin-password", "--password-from-stdin"],
                             input="brand-new-pw\n", capture_output=True, text=True, check=True)
        assert "successfully" in out.stdout
        assert Client(d2.url, "admin", "brand-new-pw").get("/api/user")[0] == 200
        assert api2.get("/api/user")[0] == 401
    finally:
        d2.stop()


def test_process_cli_cfg_args_and_sigterm(tmp_path):
    ini = write_ini(tmp_path)
    port_ini = tmp_path / "grafana.ini"
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    port_ini.write_text(port_ini.read_text().replace("http_port = 0", "http_port = %d" % port)
                        .replace("data = %s\n" % (tmp_path / "data"), ""))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "grafana_double.py"), "server", "--config", ini,
                             "--homepath", str(tmp_path), "--pidfile", str(tmp_path / "run" / "g.pid"),
                             "--packaging=deb", "cfg:default.paths.data=%s" % (tmp_path / "vardata")],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/health" % port, timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("double did not start")
        assert (tmp_path / "vardata" / gd.STATE_FILE).exists()
        assert (tmp_path / "run" / "g.pid").read_text() == str(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_version_flag():
    out = subprocess.run([sys.executable, os.path.join(HERE, "grafana_double.py"), "--version"],
                         capture_output=True, text=True, check=True)
    assert gd.VERSION in out.stdout


# ---------------------------------------------------------------- the YAML subset parser
YAML_DOCS = [
    """
    apiVersion: 1
    deleteDatasources:
      - name: Old
        orgId: 1
    datasources:
    - name: "Prom: main"   # comment
      type: prometheus
      url: http://h:9090/path#frag
      isDefault: true
      version: 2
      ratio: 0.5
      empty:
      nothing: null
      list: [a, "b c", 3, {k: v}]
      map: {x: 1, y: [1, 2]}
      jsonData:
        httpHeaderName1: 'X-It''s'
        nested:
          - - 1
            - 2
          - k: v
            k2: v2
      secureJsonData:
        tlsCACert: |
          -----BEGIN CERTIFICATE-----
          abc # not a comment
          -----END CERTIFICATE-----
        folded: >-
          one
          two
    """,
    """
    providers:
      - name: 'a'
        options:
          path: /var/lib/grafana/dashboards
          foldersFromFilesStructure: false
    """,
    "---\nkey: value\nother: -1\n",
]


@pytest.mark.parametrize("doc", YAML_DOCS)
def test_yaml_subset_matches_pyyaml(doc):
    yaml = pytest.importorskip("yaml")
    text = textwrap.dedent(doc)
    assert gd.yaml_load(text, prefer_pyyaml=False) == yaml.safe_load(text)


def test_yaml_subset_refuses_anchors():
    with pytest.raises(gd.YamlError):
        gd.yaml_load("a: &x 1\nb: *x\n", prefer_pyyaml=False)


def test_config_env_and_interpolation(tmp_path):
    ini = write_ini(tmp_path, "[server]\ndomain = example.org\n")
    cfg = gd.Config(ini, str(tmp_path), environ={"GF_SERVER_HTTP_PORT": "4321"})
    assert cfg.get("server", "http_port") == "4321"
    assert cfg.get("server", "root_url") == "http://example.org:4321/"
    assert cfg.get("", "app_mode") == "production"


# ---------------------------------------------------------------- what outside clients call
def test_frontend_settings_reports_the_version(server):
    d, api = server()
    for path in ("/api/frontend/settings", "/api/frontend/settings/"):
        status, body = api.get(path)
        assert status == 200, body
        info = body["buildInfo"]
        assert info["version"] == gd.VERSION and info["hideVersion"] is False
        assert info["edition"] == "Open Source" and info["versionString"] == "Grafana v%s (double)" % gd.VERSION
        assert body["defaultDatasource"] == "-- Grafana --"
    assert api.get("/api/frontend/settings", auth=False)[0] == 401
    api.post("/api/datasources", dict(PROM))
    assert api.get("/api/frontend/settings")[1]["defaultDatasource"] == PROM["name"]


def test_frontend_settings_hides_the_version_from_anonymous_only(server):
    d, api = server("[auth.anonymous]\nenabled = true\nhide_version = true\n")
    info = api.get("/api/frontend/settings", auth=False)[1]["buildInfo"]
    assert info["hideVersion"] is True and info["version"] == "" and info["versionString"] == "Grafana"
    assert api.get("/api/frontend/settings")[1]["buildInfo"]["version"] == gd.VERSION


def test_user_orgs_and_using(server):
    d, api = server()
    assert api.get("/api/user/orgs") == (200, [{"orgId": 1, "name": "Main Org.", "role": "Admin"}])
    assert api.post("/api/user/using/1", None) == (200, {"message": "Active organization changed"})
    assert api.post("/api/user/using/2", None) == (401, {"message": "Not a valid organization"})
    assert api.post("/api/user/using/x", None)[0] == 400
    _, key = make_token(api)
    # getUserID: identities other than users get 304 (Go writes no body)
    for method, path in (("GET", "/api/user/orgs"), ("POST", "/api/user/using/1")):
        req = urllib.request.Request(d.url + path, method=method, headers={"Authorization": "Bearer " + key})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 304 and info.value.read() == b""


class _Prometheus:
    """A stand-in Prometheus answering the health check's two calls, recording requests."""

    def __init__(self, query_status=200, query_body=None, features=None):
        import http.server
        import threading
        outer = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                outer.requests.append((self.command, self.path, body, self.headers.get("Authorization")))
                if self.path.startswith("/prom/api/v1/query"):
                    status, payload = query_status, query_body or {
                        "status": "success", "data": {"resultType": "scalar", "result": [4, "2"]}}
                elif self.path.startswith("/prom/api/v1/status/buildinfo"):
                    status, payload = 200, {"status": "success", "data": {"version": "2.42.0",
                                                                        "features": features or {}}}
                else:
                    status, payload = 404, {"status": "error"}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/prom" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_datasource_health_queries_prometheus(server):
    d, api = server()
    prom = _Prometheus()
    try:
        api.post("/api/datasources", dict(PROM, uid="prom", url=prom.url, jsonData={}, basicAuth=True, basicAuthUser="u",
                                          secureJsonData={"basicAuthPassword": "p"}))
        status, body = api.get("/api/datasources/uid/prom/health")
        assert (status, body) == (200, {"status": "OK", "message": "Successfully queried the Prometheus API.",
                                        "details": {"application": "Prometheus",
                                                    "features": {"rulerApiEnabled": False}}})
        method, path, form, auth = prom.requests[0]
        # POST form `query=1+1&time=4` (httpMethod unset means POST), with the datasource's basic auth
        assert (method, path, form) == ("POST", "/prom/api/v1/query", "query=1%2B1&time=4")
        assert auth == "Basic " + base64.b64encode(b"u:p").decode()
        assert api.post("/api/datasources/uid/prom/health", None)[0] == 200  # ANY method
        ds_id = api.get("/api/datasources/uid/prom")[1]["id"]
        assert api.get("/api/datasources/%d/health" % ds_id)[0] == 200
        viewer = Client(d.url, token=make_token(api, role="Viewer", name="viewer")[1])
        assert viewer.get("/api/datasources/uid/prom/health")[0] == 200  # datasources:query is Viewer's
    finally:
        prom.close()


def test_datasource_health_errors(server):
    d, api = server()
    prom = _Prometheus(query_status=503)
    try:
        api.post("/api/datasources", dict(PROM, uid="down", name="down", url=prom.url,
                                          jsonData={"httpMethod": "GET"}))
        status, body = api.get("/api/datasources/uid/down/health")
        assert status == 400 and body["status"] == "ERROR"
        assert body["message"] == "503 Service Unavailable - There was an error returned querying the Prometheus API."
        assert prom.requests[0][:2] == ("GET", "/prom/api/v1/query?query=1%2B1&time=4")
    finally:
        prom.close()
    api.post("/api/datasources", dict(PROM, uid="gone", name="gone", url="http://127.0.0.1:1"))
    status, body = api.get("/api/datasources/uid/gone/health")
    assert status == 400 and "details" not in body
    assert body["message"] == ('Post "http://127.0.0.1:1/api/v1/query": dial tcp 127.0.0.1:1: connect: '
                               'connection refused - There was an error returned querying the Prometheus API.')
    assert api.get("/api/datasources/uid/nope/health") == (
        500, {"message": "Unable to load datasource metadata", "traceID": ""})
    assert api.get("/api/datasources/uid/bad%20uid/health") == (400, {"message": "UID is invalid"})
    api.post("/api/datasources", {"name": "L", "uid": "loki", "type": "loki", "access": "proxy", "url": "http://x"})
    assert api.get("/api/datasources/uid/loki/health")[1]["messageId"] == "plugin.notImplemented"


def test_datasource_health_pointing_at_the_double_does_not_deadlock(server):
    d, api = server()
    api.post("/api/datasources", dict(PROM, uid="self", name="self", url=d.url))
    status, body = api.get("/api/datasources/uid/self/health")
    assert status == 400 and body["message"].startswith("401 Unauthorized - ")


def test_folder_post_on_a_dashboard_uid(server):
    d, api = server()
    api.post("/api/dashboards/db", {"dashboard": {"title": "D", "uid": "dash"}})
    assert api.post("/api/folders", {"uid": "dash", "title": "F"})[0] == 400


# ---------------------------------------------------------------- annotations
def test_annotations_create_find_and_order(server):
    d, api = server()
    status, dash = api.post("/api/dashboards/db", {"dashboard": {"title": "Annotated", "uid": "annotated"}})
    assert status == 200, dash
    status, body = api.post("/api/annotations", {"text": "rollout started", "tags": ["vllm", "rollout", "r-1"],
                                                 "time": 1000, "timeEnd": 3000})
    assert (status, body) == (200, {"message": "Annotation added", "id": 1})
    before = int(time.time() * 1000)
    # time 0 means now, timeEnd 0 means time; the trailing slash of the registered route works too
    status, body = api.post("/api/annotations/", {"text": "point", "tags": ["vllm"], "time": 0, "timeEnd": 0,
                                                  "dashboardUID": "annotated", "panelId": 4})
    assert status == 200 and body["id"] == 2
    # an unknown dashboard uid is ignored: an organisation annotation
    status, body = api.post("/api/annotations", {"text": "org", "tags": ["other"], "time": 2000,
                                                 "dashboardUID": "no-such-dashboard"})
    assert status == 200 and body["id"] == 3
    # timeEnd before time: swapped
    assert api.post("/api/annotations", {"text": "swapped", "time": 5000, "timeEnd": 4000})[0] == 200

    status, items = api.get("/api/annotations")
    assert status == 200
    # newest timeEnd first, then time
    assert [a["id"] for a in items] == [2, 4, 1, 3]
    point = items[0]
    assert set(point) == {"id", "alertId", "alertName", "dashboardId", "dashboardUID", "panelId", "userId",
                          "newState", "prevState", "created", "updated", "time", "timeEnd", "text", "tags",
                          "login", "email", "avatarUrl", "data"}
    assert point["time"] == point["timeEnd"] and point["time"] >= before
    assert point["dashboardUID"] == "annotated" and point["dashboardId"] == dash["id"] and point["panelId"] == 4
    assert point["alertId"] == 0 and point["newState"] == "" and point["login"] == "admin"
    org = [a for a in items if a["id"] == 3][0]
    assert org["dashboardId"] == 0 and org["dashboardUID"] is None and org["timeEnd"] == 2000
    assert [(a["time"], a["timeEnd"]) for a in items if a["id"] == 4] == [(4000, 5000)]

    def ids(query):
        status, found = api.get("/api/annotations?" + query)
        assert status == 200, found
        return [a["id"] for a in found]
    assert ids("tags=vllm") == [2, 1]
    assert ids("tags=vllm&tags=rollout") == [1]  # every tag must match
    assert ids("tags=rollout&tags=other&matchAny=true") == [1, 3]
    assert ids("tags=nothing") == []
    assert ids("type=annotation&tags=vllm") == [2, 1]
    assert ids("type=alert") == []
    assert ids("limit=2") == [2, 4]
    assert ids("dashboardUID=annotated") == [2]
    assert ids("panelId=4") == [2]
    assert ids("from=1500&to=2500") == [1, 3]  # overlap of [time, timeEnd]
    assert api.get("/api/annotations?dashboardUID=missing") == (
        400, {"message": "Invalid dashboard UID in annotation request"})
    assert api.get("/api/annotations/1")[1]["text"] == "rollout started"


def test_annotations_errors_patch_put_delete_and_persistence(server, tmp_path):
    d, api = server()
    assert api.post("/api/annotations", {"tags": ["x"]}) == (400, {"message": "Failed to save annotation",
                                                                  "traceID": ""})
    assert api.post("/api/annotations", {"text": ""})[0] == 400
    assert api.post("/api/annotations", {"text": "one", "tags": ["a", "b"], "time": 1000, "timeEnd": 2000,
                                         "data": {"k": 1}})[1]["id"] == 1
    # PATCH changes only what is given
    assert api.call("PATCH", "/api/annotations/1", {"timeEnd": 9000}) == (200, {"message": "Annotation patched"})
    item = api.get("/api/annotations/1")[1]
    assert (item["text"], item["tags"], item["time"], item["timeEnd"], item["data"]) == \
        ("one", ["a", "b"], 1000, 9000, {"k": 1})
    assert api.call("PATCH", "/api/annotations/1", {"text": "", "tags": ["c"], "time": 0})[0] == 200
    item = api.get("/api/annotations/1")[1]
    assert (item["text"], item["tags"], item["time"]) == ("one", ["c"], 1000)
    # PUT replaces time, timeEnd, text and tags; data stays unless sent
    assert api.put("/api/annotations/1", {"text": "two", "time": 3000}) == (200, {"message": "Annotation updated"})
    item = api.get("/api/annotations/1")[1]
    assert (item["text"], item["tags"], item["time"], item["timeEnd"], item["data"]) == \
        ("two", [], 0, 3000, {"k": 1})
    assert api.put("/api/annotations/1", {"time": 3000})[0] == 500
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        assert api.call(method, "/api/annotations/abc", {} if method in ("PUT", "PATCH") else None) == \
            (400, {"message": "annotationId is invalid"}), method
        assert api.call(method, "/api/annotations/99", {} if method in ("PUT", "PATCH") else None) == \
            (404, {"message": "Annotation not found"}), method
    # a Viewer token reads but cannot write
    _, viewer = make_token(api, role="Viewer", name="viewer")
    view = Client(d.url, token=viewer)
    assert view.get("/api/annotations")[0] == 200
    status, body = view.post("/api/annotations", {"text": "no"})
    assert status == 403 and "annotations:create" in body["message"]
    assert view.call("PATCH", "/api/annotations/1", {"text": "no"})[0] == 403
    assert view.put("/api/annotations/1", {"text": "no"})[0] == 403
    assert view.delete("/api/annotations/1")[0] == 403
    assert api.get("/api/annotations", auth=False)[0] == 401
    # persisted across a restart
    d.stop()
    d2 = gd.GrafanaDouble(config_path=str(tmp_path / "grafana.ini"), homepath=str(tmp_path)).start()
    try:
        api2 = Client(d2.url)
        assert api2.get("/api/annotations/1")[1]["text"] == "two"
        assert api2.delete("/api/annotations/1") == (200, {"message": "Annotation deleted"})
        assert api2.get("/api/annotations") == (200, [])
        assert api2.post("/api/annotations", {"text": "next"})[1]["id"] == 2
    finally:
        d2.stop()


def test_annotations_in_a_state_file_from_before(server, tmp_path):
    """A state file written before the double kept annotations gets an empty list."""
    d, api = server()
    d.stop()
    state_path = tmp_path / "data" / gd.STATE_FILE
    state = json.loads(state_path.read_text())
    del state["annotations"]
    state_path.write_text(json.dumps(state))
    d2 = gd.GrafanaDouble(config_path=str(tmp_path / "grafana.ini"), homepath=str(tmp_path)).start()
    try:
        api2 = Client(d2.url)
        assert api2.get("/api/annotations") == (200, [])
        assert api2.post("/api/annotations", {"text": "first"})[0] == 200
    finally:
        d2.stop()
