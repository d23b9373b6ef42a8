#!/usr/bin/env python3
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Grafana test double: the subset of Grafana's HTTP API that llmops.vllm uses.

No registry reachable from our machines ships Grafana, so the role and the
grafana_* modules are tested against this server. It is built from Grafana's
HTTP API documentation and source (see README.md next to this file for what
it reproduces, with the source of each behaviour, and what it does not).

Stdlib only (Python 3.9+), one file, so it can be packaged as the `grafana`
.deb of the local test apt repository and run under systemd like Grafana.

Usage:
    grafana_double.py [server] --config /etc/grafana/grafana.ini [--homepath DIR]
                      [--pidfile FILE] [--packaging deb] [cfg:default.paths.data=DIR ...]
    grafana_double.py cli [--config FILE] [--homepath DIR] admin reset-admin-password
                      (--password-from-stdin | PASSWORD)
    grafana_double.py --version

Importable: ``GrafanaDouble(config_path=..., homepath=..., overrides={...})``
with ``.start()`` (serves in a thread), ``.url`` and ``.stop()``.
"""

import argparse
import base64
import binascii
import configparser
import copy
import datetime
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import signal
import socketserver
import ssl
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

VERSION = "12.2.0"
COMMIT = "double"
BUILDSTAMP = 1757980800  # 2025-09-16, around the 12.2.0 release
STATE_FILE = "grafana-double.json"
ORG_ID = 1
ORG_NAME = "Main Org."
ROLE_RANK = {"None": 0, "Viewer": 1, "Editor": 2, "Admin": 3}
UID_RE = re.compile(r"^[a-zA-Z0-9\-_]*$")
GENERAL_FOLDER_TITLE = "General"

# Built-in defaults: the keys of conf/defaults.ini this double reads.
DEFAULTS = {
    "": {"app_mode": "production", "instance_name": "localhost"},
    "paths": {"data": "data", "logs": "data/log", "plugins": "data/plugins",
              "provisioning": "conf/provisioning", "temp_data_lifetime": "24h"},
    "server": {"protocol": "http", "http_addr": "", "http_port": "3000", "domain": "localhost",
               "root_url": "%(protocol)s://%(domain)s:%(http_port)s/", "serve_from_sub_path": "false",
               "cert_file": "", "cert_key": "", "enforce_domain": "false"},
    "security": {"admin_user": "admin", "admin_password": "admin", "admin_email": "admin@localhost",
                 "secret_key": "SW2YcwTIb9zpOOhoPsMm", "disable_initial_admin_creation": "false",
                 "cookie_secure": "false", "disable_gravatar": "false"},
    "users": {"allow_sign_up": "false", "allow_org_create": "false", "auto_assign_org": "true",
              "auto_assign_org_role": "Viewer"},
    "auth": {"disable_login_form": "false", "api_key_max_seconds_to_live": "-1",
             "login_cookie_name": "grafana_session"},
    "auth.anonymous": {"enabled": "false", "org_name": "Main Org.", "org_role": "Viewer",
                       "hide_version": "false"},
    "auth.basic": {"enabled": "true"},
    "dashboards": {"min_refresh_interval": "5s", "versions_to_keep": "20"},
    "datasources": {"datasource_limit": "5000"},
    # Not a Grafana section: switches for behaviours that changed between versions.
    # unique_titles = true reproduces Grafana <= 11.2 (412 name-exists / 409 on folder titles).
    "test_double": {"unique_titles": "false", "provisioning_poll": "true"},
}

CORE_DS_TYPES = {
    "prometheus": ("Prometheus", "public/app/plugins/datasource/prometheus/img/prometheus_logo.svg"),
    "loki": ("Loki", "public/app/plugins/datasource/loki/img/loki_icon.svg"),
    "tempo": ("Tempo", "public/app/plugins/datasource/tempo/img/tempo_logo.svg"),
    "alertmanager": ("Alertmanager", "public/app/plugins/datasource/alertmanager/img/logo.svg"),
    "graphite": ("Graphite", "public/app/plugins/datasource/graphite/img/graphite_logo.png"),
    "elasticsearch": ("Elasticsearch", "public/app/plugins/datasource/elasticsearch/img/elasticsearch.svg"),
    "influxdb": ("InfluxDB", "public/app/plugins/datasource/influxdb/img/influxdb_logo.svg"),
    "mysql": ("MySQL", "public/app/plugins/datasource/mysql/img/mysql_logo.svg"),
    "grafana-postgresql-datasource": ("PostgreSQL",
                                      "public/app/plugins/datasource/grafana-postgresql-datasource/img/postgresql_logo.svg"),
    "testdata": ("TestData", "public/app/plugins/datasource/grafana-testdata-datasource/img/testdata.svg"),
}
# Aliases Grafana resolves to the plugin id (pkg/plugins: plugin "aliasIDs").
DS_TYPE_ALIASES = {"postgres": "grafana-postgresql-datasource", "grafana-testdata-datasource": "testdata"}


def log(level, logger, msg, **kv):
    """One logfmt line on stderr, shaped like Grafana's console log."""
    parts = ["logger=%s" % logger, "t=%s" % datetime.datetime.now(datetime.timezone.utc).isoformat(),
             "level=%s" % level, "msg=%s" % json.dumps(msg)]
    for k, v in kv.items():
        parts.append("%s=%s" % (k, json.dumps(v) if isinstance(v, str) and (" " in v or not v) else v))
    sys.stderr.write(" ".join(parts) + "\n")
    sys.stderr.flush()


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def short_uid():
    """A uid like Grafana's util.GenerateShortUID (14 lower-case alphanumerics)."""
    alphabet = string.ascii_lowercase + string.digits
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(alphabet) for _ in range(13))


def slugify(title):
    """Grafana's slugify: lower case, runs of other characters become one '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", (title or "").lower()).strip("-")
    return slug


def parse_bool(value):
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def parse_duration(text):
    """Seconds in a Grafana/Prometheus duration such as 5s, 1m, 2h, 1d, 500ms; None if not one."""
    if not isinstance(text, str):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)\s*", text)
    if not m:
        return None
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[m.group(2)]
    return float(m.group(1)) * mult


# ----------------------------------------------------------------------------
# A YAML subset parser (stdlib only). Provisioning files are YAML; a target
# may lack PyYAML, so the double parses the subset provisioning files use:
# block mappings and sequences, plain/quoted scalars, flow [..] and {..}
# collections, literal (|) and folded (>) block scalars, comments.
# Anchors, aliases, tags and multi-document streams are refused with an error.
# When PyYAML is importable it is used instead.
# ----------------------------------------------------------------------------
class YamlError(ValueError):
    pass


def _strip_comment(text):
    out, quote, i = [], None, 0
    while i < len(text):
        c = text[i]
        if quote:
            out.append(c)
            if c == quote:
                if quote == "'" and i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 1
                else:
                    quote = None
            elif c == "\\" and quote == '"' and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
        elif c in "\"'" and (not out or out[-1] in " \t[{,:-"):
            quote = c
            out.append(c)
        elif c == "#" and (not out or out[-1] in " \t"):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).rstrip()


def _scalar(text):
    t = text.strip()
    if t == "" or t in ("~", "null", "Null", "NULL"):
        return None
    if t[0] in "&*!":
        raise YamlError("YAML anchors, aliases and tags are not supported by the Grafana test double: %r" % t)
    if t[0] == '"':
        if len(t) < 2 or t[-1] != '"':
            raise YamlError("unterminated string: %r" % t)
        try:
            return json.loads(t)
        except ValueError:
            return t[1:-1].encode("utf-8").decode("unicode_escape")
    if t[0] == "'":
        if len(t) < 2 or t[-1] != "'":
            raise YamlError("unterminated string: %r" % t)
        return t[1:-1].replace("''", "'")
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    if re.fullmatch(r"0x[0-9a-fA-F]+", t):
        return int(t, 16)
    if re.fullmatch(r"0o[0-7]+", t):
        return int(t[2:], 8)
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", t):
        return float(t)
    return t


class _Flow:
    def __init__(self, text):
        self.t, self.i = text, 0

    def ws(self):
        while self.i < len(self.t) and self.t[self.i] in " \t\n":
            self.i += 1

    def value(self):
        self.ws()
        c = self.t[self.i] if self.i < len(self.t) else ""
        if c == "[":
            self.i += 1
            out = []
            self.ws()
            if self.t[self.i] == "]":
                self.i += 1
                return out
            while True:
                out.append(self.value())
                self.ws()
                c = self.t[self.i]
                self.i += 1
                if c == "]":
                    return out
                if c != ",":
                    raise YamlError("bad flow sequence: %r" % self.t)
                self.ws()
                if self.t[self.i] == "]":
                    self.i += 1
                    return out
        if c == "{":
            self.i += 1
            out = {}
            self.ws()
            if self.t[self.i] == "}":
                self.i += 1
                return out
            while True:
                self.ws()
                key = self.plain()
                self.ws()
                if self.t[self.i] != ":":
                    raise YamlError("bad flow mapping: %r" % self.t)
                self.i += 1
                out[key] = self.value()
                self.ws()
                c = self.t[self.i]
                self.i += 1
                if c == "}":
                    return out
                if c != ",":
                    raise YamlError("bad flow mapping: %r" % self.t)
                self.ws()
                if self.t[self.i] == "}":
                    self.i += 1
                    return out
        return self.plain()

    def plain(self, stop=""):
        start = self.i
        if self.i < len(self.t) and self.t[self.i] in "\"'":
            q = self.t[self.i]
            self.i += 1
            while self.i < len(self.t):
                if self.t[self.i] == "\\" and q == '"':
                    self.i += 2
                    continue
                if self.t[self.i] == q:
                    if q == "'" and self.t[self.i + 1:self.i + 2] == "'":
                        self.i += 2
                        continue
                    self.i += 1
                    break
                self.i += 1
            return _scalar(self.t[start:self.i])
        while self.i < len(self.t) and self.t[self.i] not in ",]}" and not (
                self.t[self.i] == ":" and (self.i + 1 >= len(self.t) or self.t[self.i + 1] in " ,]}")):
            self.i += 1
        return _scalar(self.t[start:self.i])


def _flow(text):
    f = _Flow(text)
    try:
        v = f.value()
        f.ws()
    except IndexError:
        raise YamlError("unterminated flow collection: %r" % text)
    if f.i != len(f.t):
        raise YamlError("trailing characters after flow collection: %r" % text)
    return v


def _split_key(content):
    """Split 'key: value' at the first ': ' outside quotes; None when not a mapping entry."""
    quote = None
    for i, c in enumerate(content):
        if quote:
            if c == quote:
                quote = None
            continue
        if c in "\"'" and i == 0:
            quote = c
        elif c == ":" and (i + 1 == len(content) or content[i + 1] in " \t"):
            key = content[:i].strip()
            if key.startswith(("[", "{")):
                return None
            return _scalar(key) if key[:1] in "\"'" else key, content[i + 1:].strip()
    return None


class _Yaml:
    def __init__(self, text):
        self.raw = text.splitlines()
        self.lines = []  # (indent, content, raw index)
        for idx, raw in enumerate(self.raw):
            if "\t" in raw[:len(raw) - len(raw.lstrip())]:
                raise YamlError("tabs are not allowed for indentation (line %d)" % (idx + 1))
            content = _strip_comment(raw)
            if not content.strip():
                continue
            if content.strip() in ("---", "..."):
                if self.lines:
                    raise YamlError("multi-document YAML is not supported (line %d)" % (idx + 1))
                continue
            if content.startswith("%"):
                continue
            self.lines.append([len(content) - len(content.lstrip(" ")), content.strip(), idx])
        self.i = 0

    def parse(self):
        if not self.lines:
            return None
        value = self.block(self.lines[0][0])
        if self.i < len(self.lines):
            raise YamlError("unexpected content at line %d: %r" % (self.lines[self.i][2] + 1, self.lines[self.i][1]))
        return value

    def is_item(self, content):
        return content == "-" or content.startswith("- ")

    def block(self, indent):
        if self.is_item(self.lines[self.i][1]):
            return self.seq(indent)
        if _split_key(self.lines[self.i][1]) is not None:
            return self.mapping(indent)
        # a multi-line plain scalar
        parts = []
        while self.i < len(self.lines) and self.lines[self.i][0] >= indent:
            parts.append(self.lines[self.i][1])
            self.i += 1
        text = " ".join(parts)
        return _flow(text) if text[:1] in "[{" else _scalar(text)

    def value_after(self, rest, indent, raw_idx):
        """The value of 'key: rest' or '- rest' whose line has this indent."""
        if rest in ("|", "|-", "|+", ">", ">-", ">+"):
            return self.block_scalar(rest, indent)
        if rest == "":
            if self.i < len(self.lines) and self.lines[self.i][0] > indent:
                return self.block(self.lines[self.i][0])
            return None
        if rest[:1] in "[{":
            text = rest
            while True:
                try:
                    return _flow(text)
                except YamlError:
                    if self.i < len(self.lines) and self.lines[self.i][0] > indent:
                        text += " " + self.lines[self.i][1]
                        self.i += 1
                        continue
                    raise
        parts = [rest]
        while self.i < len(self.lines) and self.lines[self.i][0] > indent and rest[:1] not in "\"'":
            parts.append(self.lines[self.i][1])
            self.i += 1
        return _scalar(" ".join(parts))

    def block_scalar(self, style, indent):
        raw_start = self.lines[self.i - 1][2] + 1
        body, j = [], raw_start
        block_indent = None
        while j < len(self.raw):
            line = self.raw[j]
            if line.strip() == "":
                body.append("")
                j += 1
                continue
            ind = len(line) - len(line.lstrip(" "))
            if ind <= indent:
                break
            if block_indent is None:
                block_indent = ind
            if ind < block_indent:
                break
            body.append(line[block_indent:])
            j += 1
        while self.i < len(self.lines) and self.lines[self.i][2] < j:
            self.i += 1
        trailing = 0
        while body and body[-1] == "":
            body.pop()
            trailing += 1
        if style[0] == "|":
            text = "\n".join(body)
        else:
            text, prev_blank = "", True
            for line in body:
                if line == "":
                    text += "\n"
                    prev_blank = True
                elif line.startswith(" "):
                    text += ("\n" if not prev_blank else "") + line
                    prev_blank = False
                else:
                    text += ("" if prev_blank else " ") + line
                    prev_blank = False
        if style.endswith("-"):
            return text
        if style.endswith("+"):
            return text + "\n" * (trailing + 1)
        return text + "\n" if body else ""

    def seq(self, indent):
        out = []
        while self.i < len(self.lines) and self.lines[self.i][0] == indent and self.is_item(self.lines[self.i][1]):
            content = self.lines[self.i][1]
            rest = content[1:].lstrip(" ")
            if rest and (_split_key(rest) is not None and rest[:1] not in "[{") or rest.startswith("- "):
                # "- key: value" opens a mapping (or "- - x" a sequence) at the column of rest
                self.lines[self.i][0] = indent + (len(content) - len(rest))
                self.lines[self.i][1] = rest
                out.append(self.block(self.lines[self.i][0]))
            else:
                self.i += 1
                out.append(self.value_after(rest, indent, self.lines[self.i - 1][2]))
        return out

    def mapping(self, indent):
        out = {}
        while self.i < len(self.lines) and self.lines[self.i][0] == indent and not self.is_item(self.lines[self.i][1]):
            entry = _split_key(self.lines[self.i][1])
            if entry is None:
                raise YamlError("expected 'key: value' at line %d: %r" % (self.lines[self.i][2] + 1, self.lines[self.i][1]))
            key, rest = entry
            if key in out:
                raise YamlError("duplicate key %r at line %d" % (key, self.lines[self.i][2] + 1))
            self.i += 1
            if rest == "" and self.i < len(self.lines) and self.lines[self.i][0] == indent \
                    and self.is_item(self.lines[self.i][1]):
                out[key] = self.seq(indent)
            else:
                out[key] = self.value_after(rest, indent, self.lines[self.i - 1][2])
        if self.i < len(self.lines) and self.lines[self.i][0] > indent:
            raise YamlError("bad indentation at line %d: %r" % (self.lines[self.i][2] + 1, self.lines[self.i][1]))
        return out


PREFER_PYYAML = True


def yaml_load(text, prefer_pyyaml=None):
    """Parse one YAML document: PyYAML when present, else the subset parser above."""
    if PREFER_PYYAML if prefer_pyyaml is None else prefer_pyyaml:
        try:
            import yaml  # noqa: F401 pylint: disable=import-outside-toplevel
        except ImportError:
            pass
        else:
            return yaml.safe_load(text)
    return _Yaml(text).parse()


# ----------------------------------------------------------------------------
# Configuration (grafana.ini), loaded in Grafana's order: defaults,
# cfg:default.* arguments, the --config file, GF_* environment, cfg:* arguments.
# ----------------------------------------------------------------------------
def _expand_value(value):
    def env(m):
        return os.environ.get(m.group(1), "")

    def file_(m):
        with open(m.group(1), encoding="utf-8") as fh:
            return fh.read().strip()
    value = re.sub(r"\$__env\{([^}]*)\}", env, value)
    value = re.sub(r"\$__file\{([^}]*)\}", file_, value)
    value = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", env, value)
    return value


class Config:
    def __init__(self, config_path=None, homepath=None, overrides=None, default_overrides=None, environ=None):
        self.homepath = os.path.abspath(homepath or os.getcwd())
        self.config_path = config_path
        data = {sec: dict(keys) for sec, keys in DEFAULTS.items()}

        def put(section, key, value):
            data.setdefault(section, {})[key] = value

        for dotted, value in (default_overrides or {}).items():
            sec, _, key = dotted.rpartition(".")
            put(sec, key, value)
        if config_path:
            if not os.path.isfile(config_path):
                raise SystemExit("Grafana-server init failed: could not find config file %s" % config_path)
            parser = configparser.RawConfigParser(comment_prefixes=("#", ";"), inline_comment_prefixes=None,
                                                  strict=False, empty_lines_in_values=False,
                                                  default_section="__none__")
            parser.optionxform = str
            with open(config_path, encoding="utf-8") as fh:
                text = fh.read()
            parser.read_string("[__top__]\n" + text, source=config_path)
            for sec in parser.sections():
                for key, value in parser.items(sec):
                    put("" if sec == "__top__" else sec, key, value)
        env = os.environ if environ is None else environ
        for sec in list(data):
            for key in list(data[sec]) + []:
                name = "GF_%s_%s" % (sec.upper().replace(".", "_").replace("-", "_"),
                                     key.upper().replace(".", "_").replace("-", "_"))
                if sec and name in env:
                    data[sec][key] = env[name]
        for dotted, value in (overrides or {}).items():
            sec, _, key = dotted.rpartition(".")
            put(sec, key, value)
        # expansion and %(key)s interpolation within a section (as go-ini does for root_url)
        for sec, keys in data.items():
            for key, value in keys.items():
                value = _expand_value(value)
                for _ in range(3):
                    value = re.sub(r"%\(([a-z_]+)\)s", lambda m, k=keys: k.get(m.group(1), m.group(0)), value)
                keys[key] = value
        self.data = data

    def get(self, section, key, default=""):
        return self.data.get(section, {}).get(key, default)

    def getbool(self, section, key):
        return parse_bool(self.get(section, key, "false"))

    def path(self, key):
        value = self.get("paths", key)
        return value if os.path.isabs(value) else os.path.join(self.homepath, value)


# ----------------------------------------------------------------------------
# Errors and responses
# ----------------------------------------------------------------------------
class ApiError(Exception):
    """An HTTP error answer: status and JSON body."""

    def __init__(self, status, body):
        super().__init__(body.get("message") if isinstance(body, dict) else body)
        self.status = status
        self.body = body


def err(status, message, trace=False):
    """response.Error: {"message": ...}, plus traceID when Grafana passes an error value."""
    body = {"message": message}
    if trace:
        body["traceID"] = ""
    return ApiError(status, body)


def errutil(status, message_id, message, extra=False):
    """An errutil PublicError body."""
    body = {"message": message, "messageId": message_id, "statusCode": status, "traceID": ""}
    if extra:
        body["extra"] = None
    return ApiError(status, body)


class Deferred(Exception):
    """Raised by a handler whose answer needs outbound I/O (a datasource health
    check): ``work()`` runs after the state lock is released and returns
    (status, body), so a datasource URL that points back at the double cannot
    deadlock it."""

    def __init__(self, work):
        super().__init__("deferred")
        self.work = work


def dash_err(status, state, message):
    return ApiError(status, {"status": state, "message": message})


def access_denied(action):
    return ApiError(403, {
        "accessErrorId": "ACE%010d" % secrets.randbelow(10 ** 10),
        "message": "You'll need additional permissions to perform this action. Permissions needed: %s" % action,
        "title": "Access denied"})


BAD_REQUEST = "bad request data"


# ----------------------------------------------------------------------------
# Passwords and tokens
# ----------------------------------------------------------------------------
def hash_password(password, salt):
    """pbkdf2-sha256 like Grafana's util.EncodePassword (10000 rounds, 50 bytes, hex)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), 10000, 50).hex()


def new_sa_token():
    """glsa_<32 alphanumerics>_<crc32 of the rest, 8 hex> as pkg/components/satokengen does."""
    alphabet = string.ascii_letters + string.digits
    secret = "".join(secrets.choice(alphabet) for _ in range(32))
    prefix = "glsa_" + secret
    return "%s_%08x" % (prefix, zlib.crc32(prefix.encode("ascii")) & 0xffffffff), secret


def token_hash(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------
# The Prometheus plugin's health check, run against the datasource's URL
# ----------------------------------------------------------------------------
def _go_transport_error(method, url, reason):
    """The text Go's http.Client gives for a transport failure: url.Error is
    `<Op> "<url>": <err>` with Op "Get"/"Post" (approximated for the reasons
    Python reports)."""
    op = method[:1] + method[1:].lower()
    parsed = urllib.parse.urlsplit(url)
    hostport = parsed.netloc.rpartition("@")[2]
    if ":" not in hostport:
        hostport += ":443" if parsed.scheme == "https" else ":80"
    if isinstance(reason, ConnectionRefusedError):
        text = "dial tcp %s: connect: connection refused" % hostport
    elif isinstance(reason, (TimeoutError, OSError)) and "timed out" in str(reason):
        text = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    elif isinstance(reason, OSError) and getattr(reason, "errno", None) in (-2, -3, -5):
        text = "dial tcp: lookup %s: no such host" % parsed.hostname
    else:
        text = str(reason)
    return '%s "%s": %s' % (op, url, text)


def _prom_request(ds, method, path, params, timeout):
    """One request of promlib's client: (status, reason, body) or raises
    RuntimeError with Go's error text."""
    base = (ds.get("url") or "").rstrip("/")
    url = base + "/" + path
    data = None
    headers = {"User-Agent": "Grafana/%s" % VERSION}
    encoded = urllib.parse.urlencode(sorted(params.items()))
    if method == "POST":
        data = encoded.encode("ascii")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif encoded:
        url += "?" + encoded
    json_data, secure = ds.get("jsonData") or {}, ds.get("secureJsonData") or {}
    if ds.get("basicAuth"):
        pair = "%s:%s" % (ds.get("basicAuthUser") or "", secure.get("basicAuthPassword") or "")
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    i = 1
    while json_data.get("httpHeaderName%d" % i):  # custom headers (pkg/promlib/client/transport.go)
        headers[json_data["httpHeaderName%d" % i]] = secure.get("httpHeaderValue%d" % i, "")
        i += 1
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    # Go's ProxyFromEnvironment never proxies localhost or loopback addresses
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    loopback = host == "localhost" or host.startswith("127.") or host == "::1"
    opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if loopback else []))
    try:
        with opener.open(request, timeout=timeout) as response:  # nosec - the datasource URL
            return response.status, response.reason, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason, exc.read()
    except urllib.error.URLError as exc:
        raise RuntimeError(_go_transport_error(method, request.full_url.split("?")[0], exc.reason))
    except (OSError, ValueError) as exc:
        raise RuntimeError(_go_transport_error(method, request.full_url.split("?")[0], exc))


def prometheus_health(ds):
    """pkg/promlib/healthcheck.go: an instant query `1+1` at time 4 (refId
    __healthcheck__) with the datasource's jsonData.httpMethod (POST when unset,
    querydata/request.go); then buildinfo heuristics for `details`. Returns the
    API answer of checkDatasourceHealth: 200 for OK, 400 for anything else."""
    json_data = ds.get("jsonData") or {}
    method = (json_data.get("httpMethod") or "POST").upper()
    timeout = parse_duration(json_data.get("queryTimeout") or "") or 60.0
    suffix = "There was an error returned querying the Prometheus API."
    try:
        status, reason, raw = _prom_request(ds, method, "api/v1/query", {"query": "1+1", "time": "4"}, timeout)
        if status != 200:
            # "This is only for health check fall back scenario": the error is res.Status
            raise RuntimeError("%d %s" % (status, reason))
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise RuntimeError("unexpected response: not JSON")  # text inferred
        if not isinstance(answer, dict) or answer.get("status") != "success":
            answer = answer if isinstance(answer, dict) else {}
            raise RuntimeError("%s: %s" % (answer.get("errorType") or "error", answer.get("error") or "query failed"))
        body = {"status": "OK", "message": "Successfully queried the Prometheus API."}
    except RuntimeError as exc:
        body = {"status": "ERROR", "message": "%s - %s" % (exc, suffix)}
    details = _prometheus_heuristics(ds)
    if details is not None:
        body["details"] = details
    return (200 if body["status"] == "OK" else 400), body


def _prometheus_heuristics(ds):
    """pkg/promlib/heuristics.go: GET api/v1/status/buildinfo; non-empty
    data.features means Mimir with the ruler API. None when the call fails."""
    try:
        status, _, raw = _prom_request(ds, "GET", "api/v1/status/buildinfo", {}, 10)
        features = (json.loads(raw.decode("utf-8")).get("data") or {}).get("features") if status == 200 else None
    except (RuntimeError, ValueError, UnicodeDecodeError, AttributeError):
        return None
    if status != 200:
        return None
    if features:
        return {"application": "Mimir", "features": {"rulerApiEnabled": True}}
    return {"application": "Prometheus", "features": {"rulerApiEnabled": False}}


# ----------------------------------------------------------------------------
# The double: state, provisioning and the API handlers
# ----------------------------------------------------------------------------
class Identity:
    def __init__(self, kind, user=None, role="None", grafana_admin=False):
        self.kind = kind  # user | sa | anonymous
        self.user = user
        self.role = role
        self.grafana_admin = grafana_admin

    @property
    def login(self):
        return self.user["login"] if self.user else "Anonymous"

    @property
    def user_id(self):
        return self.user["id"] if self.user else 0

    def has(self, role):
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[role]


# Which role each action needs (Grafana's basic-role grants; see README).
ACTION_ROLE = {
    "datasources:read": "Admin", "datasources:create": "Admin", "datasources:write": "Admin",
    "datasources:delete": "Admin", "datasources:query": "Viewer",
    "dashboards:read": "Viewer", "dashboards:create": "Editor", "dashboards:write": "Editor",
    "dashboards:delete": "Editor",
    "folders:read": "Viewer", "folders:create": "Editor", "folders:write": "Editor", "folders:delete": "Editor",
    "serviceaccounts:read": "Admin", "serviceaccounts:create": "Admin", "serviceaccounts:write": "Admin",
    "serviceaccounts:delete": "Admin", "orgs:read": "Viewer",
    "annotations:read": "Viewer", "annotations:create": "Editor", "annotations:write": "Editor",
    "annotations:delete": "Editor",
}


class GrafanaDouble:
    def __init__(self, config_path=None, homepath=None, overrides=None, default_overrides=None, environ=None):
        self.cfg = Config(config_path, homepath, overrides, default_overrides, environ)
        self.data_dir = self.cfg.path("data")
        self.provisioning_dir = self.cfg.path("provisioning")
        self.state_path = os.path.join(self.data_dir, STATE_FILE)
        self.lock = threading.RLock()
        self.state = None
        self.state_mtime = None
        self.httpd = None
        self.thread = None
        self.poller = None
        self.stopping = threading.Event()
        self.unique_titles = self.cfg.getbool("test_double", "unique_titles")

    # ---- state -------------------------------------------------------------
    def load_state(self):
        os.makedirs(self.data_dir, mode=0o750, exist_ok=True)
        if os.path.exists(self.state_path):
            with open(self.state_path, encoding="utf-8") as fh:
                self.state = json.load(fh)
            self.state_mtime = os.stat(self.state_path).st_mtime_ns
            return
        self.state = {"schema": 1, "seq": {}, "users": [], "tokens": [], "datasources": [],
                      "dashboards": [], "sessions": [], "annotations": [], "created": now_iso()}
        if not self.cfg.getbool("security", "disable_initial_admin_creation"):
            # [security] admin_user/admin_password are used once, when the database is created.
            salt = secrets.token_hex(5)
            self.state["users"].append({
                "id": self.next_id("user"), "uid": short_uid(), "login": self.cfg.get("security", "admin_user"),
                "email": self.cfg.get("security", "admin_email"), "name": "", "salt": salt,
                "password": hash_password(self.cfg.get("security", "admin_password"), salt),
                "isGrafanaAdmin": True, "role": "Admin", "isServiceAccount": False, "isDisabled": False,
                "created": now_iso(), "updated": now_iso()})
        self.save_state()

    def refresh_state(self):
        """Re-read the state file when another process (grafana cli) changed it."""
        try:
            mtime = os.stat(self.state_path).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self.state_mtime:
            with open(self.state_path, encoding="utf-8") as fh:
                self.state = json.load(fh)
            self.state_mtime = mtime

    def save_state(self):
        tmp = self.state_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.state, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)
        self.state_mtime = os.stat(self.state_path).st_mtime_ns

    def next_id(self, kind):
        seq = self.state["seq"]
        seq[kind] = seq.get(kind, 0) + 1
        return seq[kind]

    # ---- lookups -----------------------------------------------------------
    def users(self, service_accounts=None):
        return [u for u in self.state["users"]
                if service_accounts is None or u["isServiceAccount"] == service_accounts]

    def find(self, kind, **match):
        for item in self.state[kind]:
            if all(item.get(k) == v for k, v in match.items()):
                return item
        return None

    def folders(self):
        return [d for d in self.state["dashboards"] if d["isFolder"]]

    def folder_by_uid(self, uid):
        return self.find("dashboards", uid=uid, isFolder=True) if uid else None

    # ---- lifecycle ---------------------------------------------------------
    def start(self, block=False):
        with self.lock:
            self.load_state()
            self.provision_datasources()
            self.provision_dashboards()
        addr = self.cfg.get("server", "http_addr") or ""
        port = int(self.cfg.get("server", "http_port") or 3000)
        handler = type("Handler", (RequestHandler,), {"double": self})
        self.httpd = _Server((addr, port), handler)
        protocol = self.cfg.get("server", "protocol")
        if protocol in ("https", "h2"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cfg.get("server", "cert_file"), self.cfg.get("server", "cert_key"))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        scheme = "https" if protocol in ("https", "h2") else "http"
        host = addr if addr not in ("", "0.0.0.0", "::") else "127.0.0.1"
        self.url = "%s://%s:%d" % (scheme, host, self.port)
        log("info", "http.server", "HTTP Server Listen", address="%s:%d" % (addr, self.port), protocol=scheme,
            subUrl="", socket="", version=VERSION)
        if self.cfg.getbool("test_double", "provisioning_poll"):
            self.poller = threading.Thread(target=self._poll_provisioning, daemon=True)
            self.poller.start()
        if block:
            self.httpd.serve_forever()
        else:
            self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
            self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.thread:
            self.thread.join(5)

    def _poll_provisioning(self):
        while not self.stopping.wait(1):
            now = time.monotonic()
            for prov in getattr(self, "providers", []):
                if now - prov.get("_last", 0) >= prov.get("updateIntervalSeconds", 10):
                    with self.lock:
                        self.refresh_state()
                        try:
                            if self.sync_provider(prov):
                                self.save_state()
                        except Exception as exc:  # pylint: disable=broad-except
                            log("error", "provisioning.dashboard", "failed to sync provider",
                                provider=prov.get("name", ""), error=str(exc))
                    prov["_last"] = now

    # ---- provisioning ------------------------------------------------------
    def _yaml_files(self, sub):
        folder = os.path.join(self.provisioning_dir, sub)
        if not os.path.isdir(folder):
            return []
        return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
                if n.endswith((".yaml", ".yml", ".json")) and os.path.isfile(os.path.join(folder, n))]

    @staticmethod
    def _expand_env(value):
        """$VAR, ${VAR}; $$ is a literal $ (Grafana's provisioning values)."""
        if isinstance(value, str):
            return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)",
                          lambda m: "$" if m.group(0) == "$$" else os.environ.get(m.group(1) or m.group(2), ""),
                          value)
        if isinstance(value, list):
            return [GrafanaDouble._expand_env(v) for v in value]
        if isinstance(value, dict):
            return {k: GrafanaDouble._expand_env(v) for k, v in value.items()}
        return value

    def _read_yaml(self, path):
        with open(path, encoding="utf-8") as fh:
            doc = yaml_load(fh.read())
        return self._expand_env(doc or {})

    def provision_datasources(self):
        configs = []
        for path in self._yaml_files("datasources"):
            try:
                doc = self._read_yaml(path)
            except (YamlError, ValueError, OSError) as exc:
                raise SystemExit("Datasource provisioning error: failed to load %s: %s" % (path, exc))
            if not isinstance(doc, dict):
                raise SystemExit("Datasource provisioning error: %s is not a mapping" % path)
            configs.append((path, doc))
        defaults = [d for _, doc in configs for d in (doc.get("datasources") or []) if d.get("isDefault")]
        if len([d for d in defaults if int(d.get("orgId") or 1) == ORG_ID]) > 1:
            raise SystemExit("Datasource provisioning error: datasource.yaml config is invalid. "
                             "Only one datasource per organization can be marked as default")
        wanted = set()
        for path, doc in configs:
            for entry in doc.get("deleteDatasources") or []:
                ds = self.find("datasources", name=entry.get("name"))
                if ds:
                    self.state["datasources"].remove(ds)
                    log("info", "provisioning.datasources", "deleted datasource based on configuration",
                        name=entry.get("name"))
            for entry in doc.get("datasources") or []:
                if not entry.get("name"):
                    raise SystemExit("Datasource provisioning error: datasource in %s has no name" % path)
                wanted.add(entry["name"])
                ds = self.find("datasources", name=entry["name"])
                cmd = {
                    "name": entry["name"], "type": entry.get("type", ""), "access": entry.get("access") or "proxy",
                    "url": entry.get("url", "") or "", "user": entry.get("user", "") or "",
                    "database": entry.get("database", "") or "", "basicAuth": bool(entry.get("basicAuth")),
                    "basicAuthUser": entry.get("basicAuthUser", "") or "",
                    "withCredentials": bool(entry.get("withCredentials")), "isDefault": bool(entry.get("isDefault")),
                    "jsonData": entry.get("jsonData") or {}, "uid": entry.get("uid") or "",
                    "secureJsonData": {k: str(v) for k, v in (entry.get("secureJsonData") or {}).items()},
                }
                if ds is None:
                    ds = self._new_datasource(cmd)
                    log("info", "provisioning.datasources", "inserting datasource from configuration",
                        name=ds["name"], uid=ds["uid"])
                else:
                    self._apply_datasource(ds, cmd, replace_secure=True)
                    if cmd["uid"]:
                        ds["uid"] = cmd["uid"]
                    ds["version"] = int(entry.get("version") or ds["version"] + 1)
                    log("info", "provisioning.datasources", "updating datasource from configuration",
                        name=ds["name"], uid=ds["uid"])
                ds["readOnly"] = not bool(entry.get("editable", False))
                ds["provisioned"] = True
                if ds["isDefault"]:
                    self._only_default(ds)
            if doc.get("prune"):
                for ds in [d for d in self.state["datasources"] if d.get("provisioned") and d["name"] not in wanted]:
                    self.state["datasources"].remove(ds)
        self.save_state()

    def provision_dashboards(self):
        self.providers = []
        for path in self._yaml_files("dashboards"):
            try:
                doc = self._read_yaml(path)
            except (YamlError, ValueError, OSError) as exc:
                raise SystemExit("Dashboard provisioning error: failed to load %s: %s" % (path, exc))
            for prov in (doc or {}).get("providers") or []:
                if not prov.get("name"):
                    raise SystemExit("Dashboard provisioning error: provider in %s has no name" % path)
                if (prov.get("type") or "file") != "file":
                    log("warn", "provisioning.dashboard", "provider type not supported by the test double",
                        type=prov.get("type"))
                    continue
                opts = prov.get("options") or {}
                if not opts.get("path"):
                    raise SystemExit("Dashboard provisioning error: provider %s has no options.path" % prov["name"])
                prov = dict(prov)
                prov["updateIntervalSeconds"] = int(prov.get("updateIntervalSeconds") or 10)
                prov["_last"] = time.monotonic()
                self.providers.append(prov)
        # dashboards of providers that are gone are deleted (DeleteOrphanedProvisionedDashboards)
        names = {p["name"] for p in self.providers}
        for dash in [d for d in self.state["dashboards"] if d.get("provisioning")
                     and d["provisioning"]["name"] not in names]:
            self.state["dashboards"].remove(dash)
        for prov in self.providers:
            self.sync_provider(prov)
        self.save_state()

    def _provider_folder(self, prov, title, uid):
        """The folder for a provider's dashboards: found by uid or title, created if missing."""
        if not title and not uid:
            return ""
        folder = self.folder_by_uid(uid) if uid else None
        if folder is None and title:
            folder = next((f for f in self.folders() if f["title"] == title and not f.get("folderUid")), None)
        if folder is None:
            folder = self._save_folder_record(None, {"uid": uid or short_uid(), "title": title or uid},
                                              "provisioning")
        return folder["uid"]

    def sync_provider(self, prov):
        """Load the provider's dashboard files; returns True when something changed."""
        opts = prov.get("options") or {}
        root = opts["path"]
        changed = False
        seen = set()
        files = []
        if os.path.isdir(root):
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.endswith(".json"):
                        files.append(os.path.join(dirpath, name))
        elif os.path.isfile(root):
            files.append(root)
        for path in files:
            rel = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
            try:
                with open(path, "rb") as fh:
                    raw = fh.read()
                dash = json.loads(raw.decode("utf-8"))
                if not isinstance(dash, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, OSError) as exc:
                log("error", "provisioning.dashboard", "failed to load dashboard from", file=path, error=str(exc))
                continue
            if not (dash.get("title") or "").strip():
                log("error", "provisioning.dashboard", "failed to save dashboard", file=path,
                    error="Dashboard title cannot be empty")
                continue
            checksum = hashlib.md5(raw).hexdigest()  # nosec - change detection, as Grafana does
            seen.add(rel)
            existing = next((d for d in self.state["dashboards"] if (d.get("provisioning") or {}).get("name")
                             == prov["name"] and d["provisioning"]["externalId"] == rel), None)
            if existing and existing["provisioning"].get("checksum") == checksum:
                continue
            folder_title, folder_uid = prov.get("folder") or "", prov.get("folderUid") or ""
            if opts.get("foldersFromFilesStructure") and os.path.dirname(rel):
                folder_title, folder_uid = os.path.dirname(rel).split(os.sep)[0], ""
            folder = self._provider_folder(prov, folder_title, folder_uid)
            dash = dict(dash)
            dash.pop("id", None)
            if not dash.get("uid") and existing:
                dash["uid"] = existing["uid"]
            try:
                rec = self._save_dashboard(dash, folder, overwrite=True, message="", who=None,
                                           check_provisioned=False)
            except ApiError as exc:
                log("error", "provisioning.dashboard", "failed to save dashboard", file=path, error=str(exc))
                continue
            if existing and existing is not rec and existing in self.state["dashboards"]:
                self.state["dashboards"].remove(existing)
            rec["provisioning"] = {"name": prov["name"], "externalId": rel, "checksum": checksum,
                                   "allowUiUpdates": bool(prov.get("allowUiUpdates")),
                                   "updated": int(time.time())}
            changed = True
        for dash in [d for d in self.state["dashboards"] if (d.get("provisioning") or {}).get("name") == prov["name"]
                     and d["provisioning"]["externalId"] not in seen]:
            if prov.get("disableDeletion"):
                continue
            self.state["dashboards"].remove(dash)
            changed = True
        return changed

    # ---- authentication ----------------------------------------------------
    def authenticate(self, headers, cookie_value):
        auth = headers.get("Authorization") or ""
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() == "bearer" and cred.strip():
            return self._token_identity(cred.strip())
        if scheme.lower() == "basic" and cred.strip():
            if not self.cfg.getbool("auth.basic", "enabled"):
                raise errutil(401, "auth.unauthorized", "Unauthorized", extra=True)
            try:
                decoded = base64.b64decode(cred.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise errutil(401, "auth.unauthorized", "Unauthorized", extra=True)
            user, sep, password = decoded.partition(":")
            if not sep:
                raise errutil(401, "auth.unauthorized", "Unauthorized", extra=True)
            if user == "api_key":
                return self._token_identity(password)
            return self._password_identity(user, password)
        if cookie_value:
            sess = self.find("sessions", token=token_hash(cookie_value))
            if sess:
                user = self.find("users", id=sess["userId"])
                if user and not user["isDisabled"]:
                    return Identity("user", user, user["role"], user["isGrafanaAdmin"])
        if self.cfg.getbool("auth.anonymous", "enabled"):
            return Identity("anonymous", None, self.cfg.get("auth.anonymous", "org_role") or "Viewer")
        raise errutil(401, "auth.unauthorized", "Unauthorized", extra=True)

    def _password_identity(self, login, password):
        user = next((u for u in self.users(False)
                     if u["login"].lower() == login.lower() or u["email"].lower() == login.lower()), None)
        if user is None or not hmac.compare_digest(hash_password(password, user["salt"]), user["password"]):
            raise errutil(401, "password-auth.failed", "Invalid username or password", extra=True)
        if user["isDisabled"]:
            raise errutil(401, "user.disabled", "User is disabled", extra=True)
        return Identity("user", user, user["role"], user["isGrafanaAdmin"])

    def _token_identity(self, key):
        tok = self.find("tokens", hash=token_hash(key))
        if tok is None:
            raise errutil(401, "api-key.invalid", "Invalid API key", extra=True)
        if tok.get("expires") and tok["expires"] <= time.time():
            raise errutil(401, "api-key.expired", "Expired API key", extra=True)
        if tok.get("isRevoked"):
            raise errutil(401, "api-key.revoked", "Revoked API key", extra=True)
        sa = self.find("users", id=tok["serviceAccountId"])
        if sa is None or sa["isDisabled"]:
            raise errutil(401, "api-key.invalid", "Invalid API key", extra=True)
        return Identity("sa", sa, sa["role"], False)

    @staticmethod
    def require(ident, action):
        if not ident.has(ACTION_ROLE[action]):
            raise access_denied(action)

    # ---- datasources -------------------------------------------------------
    def ds_type(self, type_):
        return DS_TYPE_ALIASES.get(type_, type_)

    def ds_dto(self, ds):
        logo = CORE_DS_TYPES.get(ds["type"], (None, "public/img/icn-datasource.svg"))[1]
        return {
            "id": ds["id"], "uid": ds["uid"], "orgId": ORG_ID, "name": ds["name"], "type": ds["type"],
            "typeLogoUrl": logo, "access": ds["access"], "url": ds["url"], "user": ds["user"],
            "database": ds["database"], "basicAuth": ds["basicAuth"], "basicAuthUser": ds["basicAuthUser"],
            "withCredentials": ds["withCredentials"], "isDefault": ds["isDefault"],
            "jsonData": copy.deepcopy(ds["jsonData"]) if ds["jsonData"] else {},
            "secureJsonFields": {k: True for k, v in sorted(ds["secureJsonData"].items()) if v},
            "version": ds["version"], "readOnly": ds["readOnly"], "apiVersion": "",
        }

    def ds_list_item(self, ds):
        dto = self.ds_dto(ds)
        item = {k: dto[k] for k in ("id", "uid", "orgId", "name", "type")}
        item["typeName"] = CORE_DS_TYPES.get(ds["type"], (ds["type"], None))[0]
        item.update({k: dto[k] for k in ("typeLogoUrl", "access", "url", "user", "database", "basicAuth",
                                         "isDefault", "jsonData", "readOnly")})
        return item

    def _only_default(self, ds):
        for other in self.state["datasources"]:
            if other is not ds:
                other["isDefault"] = False

    @staticmethod
    def _ds_command(body, require_name):
        if not isinstance(body, dict):
            raise err(400, BAD_REQUEST)
        for key in ("type", "access") + (("name",) if require_name else ()):
            if not body.get(key) or not isinstance(body.get(key), str):
                raise err(400, BAD_REQUEST)
        for key in ("name", "type", "access", "url", "user", "database", "basicAuthUser", "uid"):
            if body.get(key) is not None and not isinstance(body.get(key), str):
                raise err(400, BAD_REQUEST)
        for key in ("jsonData", "secureJsonData"):
            if body.get(key) is not None and not isinstance(body.get(key), dict):
                raise err(400, BAD_REQUEST)
        if body.get("version") is not None and not isinstance(body.get("version"), int):
            raise err(400, BAD_REQUEST)
        if body["access"] not in ("proxy", "direct"):
            raise err(400, BAD_REQUEST)
        return body

    @staticmethod
    def _validate_ds(body):
        uid = body.get("uid") or ""
        if uid and (not UID_RE.match(uid) or len(uid) > 40):
            raise errutil(400, "datasource.uidInvalid", "Invalid datasource UID.")
        if len(body.get("name") or "") > 190:
            raise errutil(400, "datasource.nameInvalid", "Invalid datasource name.")
        url = body.get("url") or ""
        if len(url) > 255:
            raise errutil(400, "datasource.urlInvalid", "Invalid datasource url.")
        if url and (re.search(r"\s", url.strip()) or "://" in url and not urllib.parse.urlsplit(url).netloc):
            raise err(400, "Validation error, invalid URL", trace=True)

    def _new_datasource(self, cmd):
        ds = {"id": self.next_id("datasource"), "uid": cmd.get("uid") or short_uid(), "version": 1,
              "readOnly": False, "provisioned": False, "created": now_iso()}
        self._apply_datasource(ds, cmd, replace_secure=True)
        if not any(d["isDefault"] for d in self.state["datasources"]):
            ds["isDefault"] = True  # the first datasource of an org becomes the default
        self.state["datasources"].append(ds)
        if ds["isDefault"]:
            self._only_default(ds)
        return ds

    def _apply_datasource(self, ds, cmd, replace_secure=False):
        for key in ("name", "type", "access", "url", "basicAuthUser", "uid"):
            # xorm updates non-zero columns only: an empty value keeps the stored one
            if cmd.get(key) or key not in ds:
                ds[key] = cmd.get(key) or ""
        ds["type"] = self.ds_type(ds["type"])
        for key in ("user", "database"):
            ds[key] = cmd.get(key) or ""
        for key in ("basicAuth", "withCredentials", "isDefault"):
            ds[key] = bool(cmd.get(key))
        ds["jsonData"] = copy.deepcopy(cmd.get("jsonData") or {})
        secure = {k: "" if v is None else str(v) for k, v in (cmd.get("secureJsonData") or {}).items()}
        if replace_secure or "secureJsonData" not in ds:
            ds["secureJsonData"] = secure
        else:
            merged = dict(ds["secureJsonData"])  # absent keys are kept (fillWithSecureJSONData)
            merged.update(secure)
            ds["secureJsonData"] = merged
        ds["updated"] = now_iso()

    def ds_get(self, by, key):
        if by == "id":
            try:
                key = int(key)
            except ValueError:
                raise err(400, "id is invalid", trace=True)
        ds = self.find("datasources", **{by: key})
        if ds is None:
            raise err(404, "Data source not found")
        return ds

    def ds_create(self, ident, body):
        self.require(ident, "datasources:create")
        cmd = self._ds_command(body, require_name=False)
        self._validate_ds(cmd)
        cmd = dict(cmd)
        if not cmd.get("name"):
            base, n = self.ds_type(cmd["type"]), 0
            cmd["name"] = base
            while self.find("datasources", name=cmd["name"]):
                n += 1
                cmd["name"] = "%s-%d" % (base, n)
        if self.find("datasources", name=cmd["name"]):
            raise err(409, "data source with the same name already exists", trace=True)
        if cmd.get("uid") and self.find("datasources", uid=cmd["uid"]):
            raise err(409, "data source with the same uid already exists", trace=True)
        limit = int(self.cfg.get("datasources", "datasource_limit") or 5000)
        if len(self.state["datasources"]) >= limit:
            raise err(403, "Quota reached")
        ds = self._new_datasource(cmd)
        return 200, {"datasource": self.ds_dto(ds), "id": ds["id"], "message": "Datasource added",
                     "name": ds["name"]}

    def ds_update(self, ident, ds, body):
        self.require(ident, "datasources:write")
        cmd = self._ds_command(body, require_name=True)
        self._validate_ds(cmd)
        if ds["readOnly"]:
            raise err(403, "Cannot update read-only data source")
        other = self.find("datasources", name=cmd["name"])
        if other is not None and other is not ds:
            raise err(409, "Failed to update datasource: data source with the same name already exists",
                      trace=True)
        sent = cmd.get("version") or 0
        if sent and ds["version"] > sent:
            raise err(409, "Datasource has already been updated by someone else. Please reload and try again",
                      trace=True)
        if cmd.get("uid") and cmd["uid"] != ds["uid"] and self.find("datasources", uid=cmd["uid"]):
            raise err(409, "data source with the same uid already exists", trace=True)
        self._apply_datasource(ds, cmd)
        ds["version"] = sent + 1  # the store writes version = cmd.Version + 1
        if ds["isDefault"]:
            self._only_default(ds)
        return 200, {"datasource": self.ds_dto(ds), "id": ds["id"], "message": "Datasource updated",
                     "name": ds["name"]}

    def ds_delete(self, ident, ds, with_id=True):
        self.require(ident, "datasources:delete")
        if ds["readOnly"]:
            raise err(403, "Cannot delete read-only data source")
        self.state["datasources"].remove(ds)
        body = {"message": "Data source deleted"}
        if with_id:
            body["id"] = ds["id"]
        return 200, body

    # ---- folders -------------------------------------------------------
    def folder_dto(self, ident, f):
        can_edit = ident.has("Editor")
        return {"id": f["id"], "uid": f["uid"], "orgId": ORG_ID, "title": f["title"],
                "url": "/dashboards/f/%s/%s" % (f["uid"], slugify(f["title"])), "hasAcl": False,
                "canSave": can_edit, "canEdit": can_edit, "canAdmin": ident.has("Admin"), "canDelete": can_edit,
                "createdBy": f["createdBy"], "created": f["created"], "updatedBy": f["updatedBy"],
                "updated": f["updated"], "version": f["version"], "description": f.get("description", "")}

    def _check_uid(self, uid):
        if uid and not UID_RE.match(uid):
            raise dash_err(400, "invalid-uid", "uid contains illegal characters")
        if len(uid) > 40:
            raise dash_err(400, "uid-too-long", "uid too long, max 40 characters")

    def _save_folder_record(self, ident, body, who=None):
        uid = body.get("uid") or short_uid()
        who = who or (ident.login if ident else "admin")
        f = {"id": self.next_id("dashboard"), "uid": uid, "title": body["title"].strip(), "isFolder": True,
             "description": body.get("description") or "", "version": 1, "created": now_iso(),
             "updated": now_iso(), "createdBy": who, "updatedBy": who, "folderUid": ""}
        self.state["dashboards"].append(f)
        return f

    def folder_create(self, ident, body):
        self.require(ident, "folders:create")
        if not isinstance(body, dict) or (body.get("title") is not None and not isinstance(body.get("title"), str)):
            raise err(400, BAD_REQUEST)
        title = (body.get("title") or "").strip()
        if not title:
            raise err(400, "folder title cannot be empty", trace=True)
        uid = body.get("uid") or ""
        if not isinstance(uid, str):
            raise err(400, BAD_REQUEST)
        if uid and not UID_RE.match(uid):
            raise err(400, "uid contains illegal characters", trace=True)
        if len(uid) > 40:
            raise err(400, "uid too long, max 40 characters", trace=True)
        if title.lower() == GENERAL_FOLDER_TITLE.lower():
            raise err(409, "a folder with the same name already exists", trace=True)
        existing = self.find("dashboards", uid=uid) if uid else None
        if existing is not None and existing.get("isFolder"):
            # 9.0-12.x: the save finds the row by uid and its version check fails
            # (issue grafana/grafana#50767; pkg/api/apierrors/folder.go maps it, and
            # the 12.x API-server path's AlreadyExists, to 412 - PR #107992).
            raise dash_err(412, "version-mismatch", "the folder has been changed by someone else")
        if existing is not None:
            # the uid is a dashboard's: the legacy save refuses to turn it into a
            # folder (ErrDashboardTypeMismatch, a 400 DashboardErr) - inferred.
            raise err(400, "Dashboard cannot be changed to a folder", trace=True)
        if self.unique_titles and any(f["title"].lower() == title.lower() for f in self.folders()):
            raise err(409, "a folder or dashboard in the general folder with the same name already exists",
                      trace=True)
        f = self._save_folder_record(ident, {"uid": uid, "title": title, "description": body.get("description")})
        return 200, self.folder_dto(ident, f)

    def folder_get(self, uid):
        f = self.folder_by_uid(uid)
        if f is None:
            raise dash_err(404, "not-found", "folder not found")
        return f

    def folder_update(self, ident, f, body):
        self.require(ident, "folders:write")
        if not isinstance(body, dict):
            raise err(400, BAD_REQUEST)
        title = body.get("title")
        if title is not None and (not isinstance(title, str) or not title.strip()):
            raise err(400, "folder title cannot be empty", trace=True)
        version = body.get("version") or 0
        if not isinstance(version, int):
            raise err(400, BAD_REQUEST)
        if not body.get("overwrite") and version != f["version"]:
            raise dash_err(412, "version-mismatch", "the folder has been changed by someone else")
        if title and self.unique_titles and any(o is not f and o["title"].lower() == title.strip().lower()
                                                for o in self.folders()):
            raise err(409, "a folder or dashboard in the general folder with the same name already exists",
                      trace=True)
        if title:
            f["title"] = title.strip()
        if "description" in body and isinstance(body.get("description"), str):
            f["description"] = body["description"]
        f["version"] += 1
        f["updated"], f["updatedBy"] = now_iso(), ident.login
        return 200, self.folder_dto(ident, f)

    def folder_delete(self, ident, f):
        self.require(ident, "folders:delete")
        inside = [d for d in self.state["dashboards"] if d.get("folderUid") == f["uid"]]
        if any(d.get("provisioning") for d in inside):
            raise err(400, "provisioned dashboard cannot be deleted", trace=True)
        for d in inside:
            self.state["dashboards"].remove(d)
        self.state["dashboards"].remove(f)
        return 200, {"message": "Folder deleted"}

    # ---- dashboards ----------------------------------------------------
    def dash_url(self, d):
        return "/d/%s/%s" % (d["uid"], slugify(d["title"]))

    def _clamp_refresh(self, dash):
        minimum = self.cfg.get("dashboards", "min_refresh_interval") or "5s"
        got, floor = parse_duration(dash.get("refresh")), parse_duration(minimum)
        if got is not None and floor is not None and got < floor:
            dash["refresh"] = minimum

    def _save_dashboard(self, dash, folder_uid, overwrite, message, who, check_provisioned=True, ident=None):
        """Grafana's SaveDashboard: returns the stored record (see README for the steps)."""
        if not isinstance(dash, dict):
            raise err(400, BAD_REQUEST)
        dash = copy.deepcopy(dash)
        title = dash.get("title")
        title = title.strip() if isinstance(title, str) else ""
        if not title:
            raise dash_err(400, "empty-name", "Dashboard title cannot be empty")
        dash["title"] = title
        if dash.get("isFolder") is True:
            raise dash_err(400, "", "Use folders endpoint for saving folders.")
        dash_id = dash.get("id") or 0
        uid = dash.get("uid") or ""
        if not isinstance(uid, str) or not isinstance(dash_id, int):
            raise err(400, BAD_REQUEST)
        version = dash.get("version") if (dash_id or uid) else 0
        version = version if isinstance(version, int) else 0
        self._check_uid(uid)
        if folder_uid and self.folder_by_uid(folder_uid) is None:
            raise err(400, "folder not found")
        existing = None
        if dash_id:
            existing = self.find("dashboards", id=dash_id, isFolder=False)
            if existing is None:
                raise dash_err(404, "not-found", "Dashboard not found")
            if not uid:
                uid = existing["uid"]
            elif existing["uid"] != uid:
                other = self.find("dashboards", uid=uid)
                if other is not None:
                    raise dash_err(400, "uid-exists", "A dashboard with the same uid already exists")
        elif uid:
            existing = self.find("dashboards", uid=uid)
            if existing is not None and existing["isFolder"]:
                raise dash_err(400, "uid-exists", "A dashboard with the same uid already exists")
        if existing is not None:
            if version != existing["version"]:
                if not overwrite:
                    raise dash_err(412, "version-mismatch", "The dashboard has been changed by someone else")
            prov = existing.get("provisioning")
            if check_provisioned and prov and not prov.get("allowUiUpdates"):
                raise err(400, "Cannot save provisioned dashboard")
        if self.unique_titles:
            same = next((d for d in self.state["dashboards"] if not d["isFolder"] and d is not existing
                         and d.get("folderUid", "") == (folder_uid or "")
                         and d["title"].lower() == title.lower()), None)
            if same is not None:
                if not overwrite:
                    raise dash_err(412, "name-exists", "A dashboard with the same name in the folder already exists")
                if existing is None:
                    existing = same  # overwrite takes over that dashboard's row (id, uid, version)
                else:
                    self.state["dashboards"].remove(same)
        self._clamp_refresh(dash)
        who = who or "admin"
        stamp = now_iso()
        if existing is None:
            rec = {"id": self.next_id("dashboard"), "uid": uid or short_uid(), "isFolder": False,
                   "version": 1, "created": stamp, "createdBy": who, "versions": []}
            self.state["dashboards"].append(rec)
        else:
            rec = existing
            rec["version"] = rec["version"] + 1
            if uid:
                rec["uid"] = uid
        rec.update({"title": title, "folderUid": folder_uid or "", "updated": stamp, "updatedBy": who})
        dash["id"], dash["uid"], dash["version"] = rec["id"], rec["uid"], rec["version"]
        rec["data"] = dash
        rec["versions"] = (rec.get("versions") or [])[-19:] + [
            {"version": rec["version"], "created": stamp, "createdBy": who, "message": message or ""}]
        return rec

    def dash_post(self, ident, body):
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            raise err(400, BAD_REQUEST)
        dash = body["dashboard"]
        is_new = not (dash.get("uid") and self.find("dashboards", uid=dash.get("uid"))) and not dash.get("id")
        self.require(ident, "dashboards:create" if is_new else "dashboards:write")
        folder_uid = self._folder_uid_from(body)
        rec = self._save_dashboard(dash, folder_uid, bool(body.get("overwrite")), body.get("message"),
                                   ident.login, ident=ident)
        out = {"id": rec["id"], "uid": rec["uid"], "url": self.dash_url(rec), "status": "success",
               "version": rec["version"], "slug": slugify(rec["title"])}
        if rec["folderUid"]:
            out["folderUid"] = rec["folderUid"]
        return 200, out

    def _folder_uid_from(self, body):
        folder_uid = body.get("folderUid")
        if folder_uid is not None and not isinstance(folder_uid, str):
            raise err(400, BAD_REQUEST)
        if not folder_uid and body.get("folderId"):
            f = self.find("dashboards", id=body.get("folderId"), isFolder=True)
            if f is None:
                raise err(400, "folder not found")
            folder_uid = f["uid"]
        return folder_uid or ""

    def dash_get(self, ident, uid):
        self.require(ident, "dashboards:read")
        d = self.find("dashboards", uid=uid, isFolder=False)
        if d is None:
            raise err(404, "Dashboard not found", trace=True)
        folder = self.folder_by_uid(d["folderUid"])
        prov = d.get("provisioning") or {}
        can_edit = ident.has("Editor")
        meta = {
            "type": "db", "canSave": can_edit, "canEdit": can_edit, "canAdmin": ident.has("Admin"),
            "canStar": ident.kind == "user", "canDelete": can_edit, "slug": slugify(d["title"]),
            "url": self.dash_url(d), "expires": "0001-01-01T00:00:00Z", "created": d["created"],
            "updated": d["updated"], "updatedBy": d["updatedBy"], "createdBy": d["createdBy"],
            "version": d["version"], "hasAcl": False, "isFolder": False,
            "folderId": folder["id"] if folder else 0, "folderUid": folder["uid"] if folder else "",
            "folderTitle": folder["title"] if folder else GENERAL_FOLDER_TITLE,
            "folderUrl": "/dashboards/f/%s/%s" % (folder["uid"], slugify(folder["title"])) if folder else "",
            "provisioned": bool(prov) and not prov.get("allowUiUpdates"),
            "provisionedExternalId": prov.get("externalId", ""),
            "annotationsPermissions": {
                "dashboard": {"canAdd": can_edit, "canEdit": can_edit, "canDelete": can_edit},
                "organization": {"canAdd": ident.has("Editor"), "canEdit": ident.has("Editor"),
                                 "canDelete": ident.has("Editor")}},
        }
        return 200, {"dashboard": copy.deepcopy(d["data"]), "meta": meta}

    def dash_delete(self, ident, uid):
        self.require(ident, "dashboards:delete")
        d = self.find("dashboards", uid=uid)
        if d is None:
            raise err(404, "Dashboard not found", trace=True)
        if d["isFolder"]:
            raise err(400, "Use folders endpoint for deleting folders.", trace=True)
        if d.get("provisioning"):
            raise err(400, "provisioned dashboard cannot be deleted", trace=True)
        self.state["dashboards"].remove(d)
        return 200, {"title": d["title"], "message": "Dashboard %s deleted" % d["title"], "uid": d["uid"]}

    def dash_versions(self, ident, uid):
        self.require(ident, "dashboards:read")
        d = self.find("dashboards", uid=uid, isFolder=False)
        if d is None:
            raise err(404, "Dashboard not found", trace=True)
        out = []
        for v in reversed(d.get("versions") or []):
            out.append({"id": v["version"], "dashboardId": d["id"], "uid": d["uid"],
                        "parentVersion": max(v["version"] - 1, 0), "restoredFrom": 0, "version": v["version"],
                        "created": v["created"], "createdBy": v["createdBy"], "message": v["message"]})
        return 200, {"continueToken": "", "versions": out}

    def search(self, ident, query):
        self.require(ident, "dashboards:read")
        q = (query.get("query") or [""])[-1].lower()
        types = query.get("type") or []
        tags = query.get("tag") or []
        uids = [u for v in query.get("dashboardUIDs") or [] for u in v.split(",") if u]
        folder_uids = [u for v in query.get("folderUIDs") or [] for u in v.split(",") if u]
        try:
            limit = min(int((query.get("limit") or ["1000"])[-1]), 5000)
            page = max(int((query.get("page") or ["1"])[-1]), 1)
        except ValueError:
            raise err(400, BAD_REQUEST)
        hits = []
        for d in self.state["dashboards"]:
            kind = "dash-folder" if d["isFolder"] else "dash-db"
            if types and kind not in types:
                continue
            if q and q not in d["title"].lower():
                continue
            dtags = [] if d["isFolder"] else list(d["data"].get("tags") or [])
            if tags and not all(t in dtags for t in tags):
                continue
            if uids and d["uid"] not in uids:
                continue
            parent = d.get("folderUid") or ""
            if folder_uids and (parent or "general") not in folder_uids and parent not in folder_uids:
                continue
            slug = slugify(d["title"])
            item = {"id": d["id"], "uid": d["uid"], "orgId": ORG_ID, "title": d["title"],
                    "uri": "db/%s" % slug,
                    "url": "/dashboards/f/%s/%s" % (d["uid"], slug) if d["isFolder"] else self.dash_url(d),
                    "slug": slug, "type": kind, "tags": dtags, "isStarred": False}
            folder = self.folder_by_uid(parent)
            if folder:
                item.update({"folderId": folder["id"], "folderUid": folder["uid"], "folderTitle": folder["title"],
                             "folderUrl": "/dashboards/f/%s/%s" % (folder["uid"], slugify(folder["title"]))})
            item["sortMeta"] = 0
            hits.append(item)
        hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
        return 200, hits[(page - 1) * limit: page * limit]

    def dash_import(self, ident, body):
        self.require(ident, "dashboards:create")
        if not isinstance(body, dict):
            raise err(400, BAD_REQUEST)
        dash = body.get("dashboard")
        if not dash and not body.get("pluginId"):
            raise err(422, "Dashboard must be set")
        if not isinstance(dash, dict):
            raise err(400, BAD_REQUEST)
        inputs = body.get("inputs") or []
        if not isinstance(inputs, list):
            raise err(400, BAD_REQUEST)
        variables = {}
        for decl in dash.get("__inputs") or []:
            match = next((i for i in inputs if isinstance(i, dict) and i.get("type") == decl.get("type")
                          and i.get("name") in (decl.get("name"), "*")), None)
            if match is None:
                log("error", "dashboard.import", "Failed to save dashboard",
                    error="Dashboard input variable: %s missing from import command" % decl.get("name"))
                raise err(500, "Failed to save dashboard", trace=True)
            variables[decl.get("name")] = match.get("value", "")

        def evaluate(value):
            if isinstance(value, str):
                return re.sub(r"\$\{(.+?)\}", lambda m: str(variables[m.group(1)]) if m.group(1) in variables
                              else m.group(0), value)
            if isinstance(value, list):
                return [evaluate(v) for v in value]
            if isinstance(value, dict):
                return {k: evaluate(v) for k, v in value.items()}
            return value
        generated = {k: evaluate(v) for k, v in dash.items() if not k.startswith("__")}
        generated.pop("id", None)
        folder_uid = self._folder_uid_from(body)
        rec = self._save_dashboard(generated, folder_uid, bool(body.get("overwrite")), "", ident.login, ident=ident)
        folder = self.folder_by_uid(rec["folderUid"])
        slug = slugify(rec["title"])
        return 200, {"uid": rec["uid"], "pluginId": body.get("pluginId") or "", "title": rec["title"],
                     "imported": True, "importedUri": "db/%s" % slug, "importedUrl": self.dash_url(rec),
                     "slug": slug, "dashboardId": rec["id"], "folderId": folder["id"] if folder else 0,
                     "folderUid": rec["folderUid"], "description": "", "path": body.get("path") or "",
                     "removed": False}

    # ---- what outside clients call besides CRUD ------------------------------
    def frontend_settings(self, ident):
        """GET /api/frontend/settings (pkg/api/frontendsettings.go; buildInfo is
        FrontendSettingsBuildInfoDTO). The version is hidden only from anonymous
        callers when [auth.anonymous] hide_version is set."""
        hide = self.cfg.getbool("auth.anonymous", "hide_version") and ident.kind == "anonymous"
        default = next((d for d in self.state["datasources"] if d["isDefault"]), None)
        return {
            "buildInfo": {
                "hideVersion": hide, "version": "" if hide else VERSION,
                "versionString": "Grafana" if hide else "Grafana v%s (%s)" % (VERSION, COMMIT[:10]),
                "commit": "" if hide else COMMIT, "commitShort": "" if hide else COMMIT[:10],
                "buildstamp": 0 if hide else BUILDSTAMP, "edition": "Open Source", "latestVersion": "",
                "hasUpdate": False, "env": self.cfg.get("", "app_mode") or "production"},
            "datasources": {d["name"]: {"id": d["id"], "uid": d["uid"], "type": d["type"], "name": d["name"],
                                        "isDefault": d["isDefault"], "access": d["access"]}
                            for d in self.state["datasources"]},
            "defaultDatasource": default["name"] if default else "-- Grafana --",
            "appUrl": self.cfg.get("server", "root_url"), "appSubUrl": "",
            "anonymousEnabled": self.cfg.getbool("auth.anonymous", "enabled"),
        }

    @staticmethod
    def _signed_in_user(ident):
        """reqSignedInNoAnonymous, then getUserID (pkg/api/user.go): anonymous gets
        401; a service account gets 304 "Endpoint only available for users"."""
        if ident.kind == "anonymous":
            raise errutil(401, "auth.unauthorized", "Unauthorized", extra=True)
        if ident.kind != "user":
            raise err(304, "Endpoint only available for users")
        return ident.user

    def user_orgs(self, ident):
        """GET /api/user/orgs: [{orgId, name, role}] (org.UserOrgDTO)."""
        user = self._signed_in_user(ident)
        return [{"orgId": ORG_ID, "name": ORG_NAME, "role": user["role"]}]

    def user_using(self, ident, org_id):
        """POST /api/user/using/:id (UserSetUsingOrg): 400 "id is invalid" for a
        non-integer, 401 "Not a valid organization" when the user is not a member."""
        try:
            org = int(org_id)
        except ValueError:
            raise err(400, "id is invalid", trace=True)
        self._signed_in_user(ident)
        if org != ORG_ID:
            raise err(401, "Not a valid organization")
        return {"message": "Active organization changed"}

    def ds_health(self, ident, by, key):
        """ANY /api/datasources/uid/:uid/health and /api/datasources/:id/health
        (pkg/api/datasources.go CheckDatasourceHealthWithUID/checkDatasourceHealth).
        Grafana asks the datasource's plugin; the double runs the Prometheus
        plugin's check (pkg/promlib/healthcheck.go) for type prometheus."""
        self.require(ident, "datasources:query")
        if by == "uid":
            if not key or len(key) > 40 or not UID_RE.match(key):
                raise err(400, "UID is invalid")
            ds = self.find("datasources", uid=key)
        else:
            try:
                ds = self.find("datasources", id=int(key))
            except ValueError:
                raise err(400, "id is invalid", trace=True)
        if ds is None:
            # no 404 branch: the datasource cache's error becomes a 500
            raise err(500, "Unable to load datasource metadata", trace=True)
        if ds["type"] != "prometheus":
            raise errutil(404, "plugin.notImplemented", "Method not implemented")
        snapshot = copy.deepcopy(ds)
        raise Deferred(lambda: prometheus_health(snapshot))

    # ---- users, service accounts, tokens ------------------------------------
    def user_profile(self, ident):
        u = ident.user
        if ident.kind != "user":
            # non-user identities get a short profile (pkg/api/user.go GetSignedInUser)
            return {"id": 0, "uid": "%s:%s" % ("service-account" if ident.kind == "sa" else "anonymous",
                                                 u["uid"] if u else ""),
                    "email": "", "name": u["name"] if u else "", "login": ident.login, "orgId": ORG_ID,
                    "isGrafanaAdmin": ident.grafana_admin, "isDisabled": False, "isExternal": False,
                    "authLabels": [], "avatarUrl": "", "theme": "", "updatedAt": "", "createdAt": ""}
        return {"id": u["id"], "uid": u["uid"], "email": u["email"], "name": u["name"], "login": u["login"],
                "theme": "", "orgId": ORG_ID, "isGrafanaAdmin": u["isGrafanaAdmin"], "isDisabled": u["isDisabled"],
                "isExternal": False, "isExternallySynced": False, "isGrafanaAdminExternallySynced": False,
                "authLabels": [], "updatedAt": u["updated"], "createdAt": u["created"],
                "avatarUrl": "/avatar/%s" % hashlib.md5(u["email"].encode()).hexdigest()}  # nosec

    def sa_dto(self, sa, full=False):
        tokens = len([t for t in self.state["tokens"] if t["serviceAccountId"] == sa["id"]])
        out = {"id": sa["id"], "uid": sa["uid"], "name": sa["name"], "login": sa["login"], "orgId": ORG_ID,
               "isDisabled": sa["isDisabled"], "role": sa["role"], "tokens": tokens,
               "avatarUrl": "/avatar/%s" % hashlib.md5(sa["login"].encode()).hexdigest()}  # nosec
        if full:
            out.update({"createdAt": sa["created"], "updatedAt": sa["updated"], "teams": [], "isExternal": False})
        return out

    def sa_get(self, sa_id):
        try:
            sa_id = int(sa_id)
        except ValueError:
            raise err(400, "Service Account ID is invalid")
        sa = self.find("users", id=sa_id, isServiceAccount=True)
        if sa is None:
            raise errutil(404, "serviceaccounts.ErrNotFound", "service account not found")
        return sa

    def sa_create(self, ident, body):
        self.require(ident, "serviceaccounts:create")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body.get("name"):
            raise err(400, "Bad request data", trace=True)
        role = body.get("role") or "Viewer"
        if role not in ROLE_RANK:
            raise errutil(400, "serviceaccounts.ErrInvalidRoleSpecified", "invalid role specified")
        if ROLE_RANK[role] > ROLE_RANK.get(ident.role, 0):
            raise errutil(403, "serviceaccounts.ErrRoleForbidden", "can not assign a role higher than user's role")
        login = "sa-%d-%s" % (ORG_ID, body["name"].lower().replace(" ", "-"))
        if any(u["login"] == login or u["name"].lower() == body["name"].lower() for u in self.users(True)):
            raise errutil(400, "serviceaccounts.ErrAlreadyExists", "service account already exists")
        sa = {"id": self.next_id("user"), "uid": short_uid(), "login": login, "email": login, "name": body["name"],
              "salt": "", "password": "", "isGrafanaAdmin": False, "role": role, "isServiceAccount": True,
              "isDisabled": bool(body.get("isDisabled")), "created": now_iso(), "updated": now_iso()}
        self.state["users"].append(sa)
        return 201, self.sa_dto(sa)

    def sa_search(self, ident, query):
        self.require(ident, "serviceaccounts:read")
        q = (query.get("query") or [""])[-1].lower()
        try:
            per = int((query.get("perpage") or ["1000"])[-1]) or 1000
            page = max(int((query.get("page") or ["1"])[-1]), 1)
        except ValueError:
            raise err(400, BAD_REQUEST)
        found = [s for s in self.users(True) if not q or q in s["name"].lower() or q in s["login"].lower()]
        disabled = (query.get("disabled") or [""])[-1]
        if disabled in ("true", "false"):
            found = [s for s in found if s["isDisabled"] == (disabled == "true")]
        found.sort(key=lambda s: (s["email"], s["login"]))
        return 200, {"totalCount": len(found), "serviceAccounts": [self.sa_dto(s) for s in
                                                                    found[(page - 1) * per: page * per]],
                     "page": page, "perPage": per}

    def sa_patch(self, ident, sa, body):
        self.require(ident, "serviceaccounts:write")
        if not isinstance(body, dict):
            raise err(400, "Bad request data", trace=True)
        if body.get("role") is not None:
            if body["role"] not in ROLE_RANK:
                raise errutil(400, "serviceaccounts.ErrInvalidRoleSpecified", "invalid role specified")
            if ROLE_RANK[body["role"]] > ROLE_RANK.get(ident.role, 0):
                raise errutil(403, "serviceaccounts.ErrRoleForbidden", "can not assign a role higher than user's role")
            sa["role"] = body["role"]
        if body.get("name"):
            sa["name"] = body["name"]
        if body.get("isDisabled") is not None:
            sa["isDisabled"] = bool(body["isDisabled"])
        sa["updated"] = now_iso()
        dto = self.sa_dto(sa)
        return 200, {"message": "Service account updated", "id": sa["id"], "name": sa["name"],
                     "serviceaccount": dto}

    def sa_delete(self, ident, sa):
        self.require(ident, "serviceaccounts:delete")
        self.state["tokens"] = [t for t in self.state["tokens"] if t["serviceAccountId"] != sa["id"]]
        self.state["users"].remove(sa)
        return 200, {"message": "Service account deleted"}

    def token_create(self, ident, sa, body):
        self.require(ident, "serviceaccounts:write")
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body.get("name"):
            raise err(400, "Bad request data", trace=True)
        ttl = body.get("secondsToLive") or 0
        if not isinstance(ttl, int) or ttl < 0:
            raise err(400, "Bad request data", trace=True)
        # pkg/services/serviceaccounts/api/token.go CreateToken: plain response.Error bodies
        max_ttl = int(self.cfg.get("auth", "api_key_max_seconds_to_live") or -1)
        if max_ttl != -1 and ttl == 0:
            raise err(400, "Number of seconds before expiration should be set")
        if max_ttl != -1 and ttl > max_ttl:
            raise err(400, "Number of seconds before expiration is greater than the global limit")
        if any(t["name"] == body["name"] for t in self.state["tokens"]):
            raise errutil(400, "serviceaccounts.ErrTokenAlreadyExists",
                          "service account token with given name already exists in the organization")
        key, _ = new_sa_token()
        tok = {"id": self.next_id("token"), "name": body["name"], "serviceAccountId": sa["id"],
               "hash": token_hash(key), "created": now_iso(), "expires": (time.time() + ttl) if ttl else None,
               "lastUsedAt": None}
        self.state["tokens"].append(tok)
        return 200, {"id": tok["id"], "name": tok["name"], "key": key}

    def token_list(self, ident, sa):
        self.require(ident, "serviceaccounts:read")
        out = []
        for t in self.state["tokens"]:
            if t["serviceAccountId"] != sa["id"]:
                continue
            # api/token.go ListTokens: expiration is time.Unix(expires) as RFC 3339 (whole seconds);
            # secondsUntilExpiration is set only for a token that expires within seven days, else 0
            exp = int(t["expires"]) if t.get("expires") else None
            now = time.time()
            expired = bool(exp and exp < now)
            out.append({"id": t["id"], "name": t["name"], "created": t["created"],
                        "lastUsedAt": t.get("lastUsedAt"),
                        "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)) if exp else None,
                        "secondsUntilExpiration": exp - now if exp and not expired and exp < now + 7 * 86400 else 0,
                        "hasExpired": expired, "isRevoked": bool(t.get("isRevoked"))})
        return 200, out

    def token_delete(self, ident, sa, token_id):
        self.require(ident, "serviceaccounts:write")
        tok = next((t for t in self.state["tokens"] if str(t["id"]) == token_id
                    and t["serviceAccountId"] == sa["id"]), None)
        if tok is None:
            raise errutil(404, "serviceaccounts.ErrTokenNotFound", "service account token not found")
        self.state["tokens"].remove(tok)
        return 200, {"message": "Service account token deleted"}

    def change_password(self, ident, body):
        if ident.kind != "user":
            raise err(400, "Not allowed to change password of a service account or anonymous user")
        if not isinstance(body, dict):
            raise err(400, BAD_REQUEST)
        u = ident.user
        if hash_password(str(body.get("oldPassword") or ""), u["salt"]) != u["password"]:
            raise err(401, "Invalid old password")
        new = body.get("newPassword") or ""
        if not isinstance(new, str) or len(new) < 4:
            raise err(400, "New password is too short")
        u["salt"] = secrets.token_hex(5)
        u["password"] = hash_password(new, u["salt"])
        u["updated"] = now_iso()
        return 200, {"message": "User password changed"}

    def reset_admin_password(self, password):
        admin = next((u for u in self.users(False) if u["isGrafanaAdmin"]), None)
        if admin is None:
            raise SystemExit("Could not find the admin user")
        admin["salt"] = secrets.token_hex(5)
        admin["password"] = hash_password(password, admin["salt"])
        admin["updated"] = now_iso()
        self.save_state()

    # ---- annotations ---------------------------------------------------------
    def annotations(self):
        # State files written before annotations existed have no list yet.
        return self.state.setdefault("annotations", [])

    def annotation_dto(self, a):
        user = self.find("users", id=a["userId"]) if a.get("userId") else None
        email = user["email"] if user else ""
        return {"id": a["id"], "alertId": 0, "alertName": "", "dashboardId": a["dashboardId"],
                "dashboardUID": a["dashboardUID"], "panelId": a["panelId"], "userId": a["userId"],
                "newState": "", "prevState": "", "created": a["created"], "updated": a["updated"],
                "time": a["time"], "timeEnd": a["timeEnd"], "text": a["text"], "tags": list(a["tags"]),
                "login": user["login"] if user else "", "email": email,
                "avatarUrl": "/avatar/%s" % hashlib.md5(email.encode()).hexdigest(),  # nosec
                "data": a.get("data") or {}}

    def annotation_get(self, annotation_id):
        try:
            annotation_id = int(annotation_id)
        except ValueError:
            raise err(400, "annotationId is invalid")
        a = self.find("annotations", id=annotation_id) if annotation_id > 0 else None
        if a is None:
            raise err(404, "Annotation not found")
        return a

    @staticmethod
    def _int_param(query, name, default=0):
        try:
            return int((query.get(name) or [default])[-1] or default)
        except ValueError:
            raise err(400, BAD_REQUEST)

    def annotation_find(self, ident, query):
        self.require(ident, "annotations:read")
        self.annotations()
        found = list(self.state["annotations"])
        dash_uid = (query.get("dashboardUID") or [""])[-1]
        dash_id = self._int_param(query, "dashboardId")
        if dash_uid:
            dash = self.find("dashboards", uid=dash_uid, isFolder=False)
            if dash is None:
                raise err(400, "Invalid dashboard UID in annotation request")
            dash_id = dash["id"]
        if dash_id:
            found = [a for a in found if a["dashboardId"] == dash_id]
        panel_id = self._int_param(query, "panelId")
        if panel_id:
            found = [a for a in found if a["panelId"] == panel_id]
        user_id = self._int_param(query, "userId")
        if user_id:
            found = [a for a in found if a["userId"] == user_id]
        if self._int_param(query, "alertId") or (query.get("type") or [""])[-1] == "alert":
            found = []  # the double stores no alert annotations
        start, end = self._int_param(query, "from"), self._int_param(query, "to")
        if start and end:
            # Overlap of [time, timeEnd] with [from, to].
            found = [a for a in found if a["time"] <= end and a["timeEnd"] >= start]
        tags = [t for t in query.get("tags") or [] if t]
        if tags:
            match_any = (query.get("matchAny") or ["false"])[-1].lower() == "true"
            test = any if match_any else all
            found = [a for a in found if test(t in a["tags"] for t in tags)]
        found.sort(key=lambda a: (a["timeEnd"], a["time"], a["id"]), reverse=True)
        limit = self._int_param(query, "limit", 100) or 100
        return 200, [self.annotation_dto(a) for a in found[:limit]]

    @staticmethod
    def _annotation_times(start, end):
        if end < start:
            start, end = end, start
        return start, end

    @staticmethod
    def _annotation_tags(tags):
        if tags is None:
            return []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise err(400, BAD_REQUEST)
        return [t.strip() for t in tags if t.strip()]

    def annotation_create(self, ident, body):
        self.require(ident, "annotations:create")
        if not isinstance(body, dict):
            raise err(400, BAD_REQUEST)
        for key in ("time", "timeEnd", "panelId", "dashboardId"):
            if body.get(key) is not None and not isinstance(body[key], int):
                raise err(400, BAD_REQUEST)
        dash_id, dash_uid = body.get("dashboardId") or 0, None
        if body.get("dashboardUID"):
            dash = self.find("dashboards", uid=body["dashboardUID"], isFolder=False)
            if dash is not None:  # an unknown uid is ignored: an organisation annotation
                dash_id = dash["id"]
        if dash_id:
            dash = self.find("dashboards", id=dash_id, isFolder=False)
            if dash is None:
                raise err(404, "Dashboard not found")
            dash_uid = dash["uid"]
        tags = self._annotation_tags(body.get("tags"))
        if not isinstance(body.get("text"), str) or not body["text"]:
            raise err(400, "Failed to save annotation", trace=True)
        now_ms = int(time.time() * 1000)
        start = body.get("time") or now_ms
        start, end = self._annotation_times(start, body.get("timeEnd") or start)
        a = {"id": self.next_id("annotation"), "dashboardId": dash_id, "dashboardUID": dash_uid,
             "panelId": body.get("panelId") or 0, "userId": ident.user_id, "created": now_ms,
             "updated": now_ms, "time": start, "timeEnd": end, "text": body["text"], "tags": tags,
             "data": body.get("data") if isinstance(body.get("data"), dict) else {}}
        self.annotations().append(a)
        return 200, {"message": "Annotation added", "id": a["id"]}

    def annotation_update(self, ident, a, body, patch):
        self.require(ident, "annotations:write")
        if not isinstance(body, dict):
            raise err(400, BAD_REQUEST)
        for key in ("time", "timeEnd"):
            if body.get(key) is not None and not isinstance(body[key], int):
                raise err(400, BAD_REQUEST)
        tags = self._annotation_tags(body.get("tags"))
        if patch:
            # Only what is given: non-empty text, non-null tags, times above 0, data.
            text = body.get("text") or a["text"]
            tags = tags if body.get("tags") is not None else a["tags"]
            start = body.get("time") or a["time"]
            end = body.get("timeEnd") or a["timeEnd"]
        else:
            # PUT replaces time, timeEnd, text and tags; data is kept unless sent.
            text, start, end = body.get("text") or "", body.get("time") or 0, body.get("timeEnd") or 0
            if not isinstance(text, str) or not text:
                raise err(500, "Failed to update annotation", trace=True)
        start, end = self._annotation_times(start, end)
        a.update({"text": text, "tags": tags, "time": start, "timeEnd": end, "updated": int(time.time() * 1000)})
        if isinstance(body.get("data"), dict):
            a["data"] = body["data"]
        return 200, {"message": "Annotation patched" if patch else "Annotation updated"}

    def annotation_delete(self, ident, a):
        self.require(ident, "annotations:delete")
        self.annotations().remove(a)
        return 200, {"message": "Annotation deleted"}

    # ---- routing -------------------------------------------------------------
    def handle(self, method, path, query, headers, body_bytes, cookie):
        """Returns (status, body, extra headers). Called with the lock held."""
        if path in ("/api/health",) and method in ("GET", "HEAD"):
            health = {"database": "ok"}
            if not self.cfg.getbool("auth.anonymous", "hide_version"):
                health = {"commit": COMMIT, "database": "ok", "version": VERSION}
            return 200, health, {"_pretty": True}
        if path == "/healthz" and method in ("GET", "HEAD"):
            return 200, "Ok", {}
        if path == "/metrics" and method in ("GET", "HEAD"):
            # Grafana serves its own Prometheus metrics here, without auth by
            # default ([metrics] enabled = true). The double gives a minimal
            # page with two of Grafana's metric names, so a scrape job works.
            dashboards = len(self.state.get("dashboards", []))
            return 200, ("# HELP grafana_build_info A metric with a constant '1' value labeled by version.\n"
                         "# TYPE grafana_build_info gauge\n"
                         "grafana_build_info{edition=\"oss\",version=\"%s\"} 1\n"
                         "# HELP grafana_stat_totals_dashboard total amount of dashboards\n"
                         "# TYPE grafana_stat_totals_dashboard gauge\n"
                         "grafana_stat_totals_dashboard %d\n" % (VERSION, dashboards)), \
                {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        if path == "/login" and method == "POST":
            return self.login(self._json(body_bytes))
        if path == "/api/user/signup" and method == "POST":
            if not self.cfg.getbool("users", "allow_sign_up"):
                raise err(401, "User signup is disabled")
            return 200, {"status": "SignUpCreated"}, {}
        if path == "/api/user/signup/step2" and method == "POST":
            if not self.cfg.getbool("users", "allow_sign_up"):
                raise err(401, "User signup is disabled")
            raise err(500, "Failed to create user")
        if not path.startswith("/api/"):
            if path in ("/", "") and method == "GET":
                return 302, "", {"Location": "/login"}
            if path == "/login" and method == "GET":
                return 200, "<!doctype html><title>Grafana</title><p>Grafana test double %s</p>" % VERSION, \
                    {"Content-Type": "text/html; charset=UTF-8"}
            return 404, "Not found", {}
        ident = self.authenticate(headers, cookie)
        body = self._json(body_bytes) if method in ("POST", "PUT", "PATCH") else None
        parts = [urllib.parse.unquote(p) for p in path[len("/api/"):].split("/")]
        parts = [p for p in parts if p != ""] if path.endswith("/") else parts
        return self.route(ident, method, parts, query, body) + ({},)

    @staticmethod
    def _json(body_bytes):
        if not body_bytes:
            return None
        try:
            return json.loads(body_bytes.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise err(400, BAD_REQUEST)

    def login(self, body):
        if not isinstance(body, dict) or not body.get("user"):
            raise err(400, BAD_REQUEST)
        try:
            ident = self._password_identity(str(body.get("user")), str(body.get("password") or ""))
        except ApiError:
            raise errutil(401, "password-auth.failed", "Invalid username or password")
        token = secrets.token_hex(16)
        self.state["sessions"] = self.state["sessions"][-50:] + [
            {"token": token_hash(token), "userId": ident.user["id"], "created": now_iso()}]
        cookie = "%s=%s; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax" % (
            self.cfg.get("auth", "login_cookie_name") or "grafana_session", token)
        return 200, {"message": "Logged in", "redirectUrl": "/"}, {"Set-Cookie": cookie}

    def route(self, ident, method, p, query, body):  # noqa: C901 pylint: disable=too-many-return-statements
        n = len(p)
        head = p[0]
        if head == "user" and n == 1 and method == "GET":
            return 200, self.user_profile(ident)
        if head == "user" and p[1:] == ["orgs"] and method == "GET":
            return 200, self.user_orgs(ident)
        if head == "user" and n == 3 and p[1] == "using" and method == "POST":
            return 200, self.user_using(ident, p[2])
        if head == "frontend" and p[1:] == ["settings"] and method == "GET":
            return 200, self.frontend_settings(ident)
        if head == "user" and p[1:] == ["password"] and method == "PUT":
            return self.change_password(ident, body)
        if head == "org" and n == 1 and method == "GET":
            self.require(ident, "orgs:read")
            return 200, {"id": ORG_ID, "name": ORG_NAME, "address": {"address1": "", "address2": "", "city": "",
                                                                     "zipCode": "", "state": "", "country": ""}}
        if head == "admin":
            if not ident.grafana_admin:
                raise err(403, "Permission denied")
            if p[1:] == ["provisioning", "datasources", "reload"] and method == "POST":
                self.provision_datasources()
                return 200, {"message": "Datasources config reloaded"}
            if p[1:] == ["provisioning", "dashboards", "reload"] and method == "POST":
                self.provision_dashboards()
                return 200, {"message": "Dashboards config reloaded"}
            if n == 4 and p[1] == "users" and p[3] == "password" and method == "PUT":
                u = self.find("users", id=int(p[2]) if p[2].isdigit() else -1, isServiceAccount=False)
                if u is None:
                    raise err(404, "user not found")
                pw = (body or {}).get("password") if isinstance(body, dict) else None
                if not isinstance(pw, str) or len(pw) < 4:
                    raise err(400, "New password too short")
                u["salt"] = secrets.token_hex(5)
                u["password"] = hash_password(pw, u["salt"])
                return 200, {"message": "User password updated"}
        if head == "datasources":
            if n == 1 and method == "GET":
                self.require(ident, "datasources:read")
                items = sorted(self.state["datasources"], key=lambda d: d["name"].lower())
                return 200, [self.ds_list_item(d) for d in items]
            if n == 1 and method == "POST":
                return self.ds_create(ident, body)
            if n == 4 and p[1] == "uid" and p[3] == "health":
                return self.ds_health(ident, "uid", p[2])
            if n == 3 and p[2] == "health" and p[1] not in ("uid", "name", "id"):
                return self.ds_health(ident, "id", p[1])
            if n == 3 and p[1] in ("uid", "name"):
                if method == "GET":
                    self.require(ident, "datasources:read")
                    return 200, self.ds_dto(self.ds_get(p[1], p[2]))
                if method == "PUT" and p[1] == "uid":
                    return self.ds_update(ident, self.ds_get("uid", p[2]), body)
                if method == "DELETE":
                    self.require(ident, "datasources:delete")
                    return self.ds_delete(ident, self.ds_get(p[1], p[2]))
            if n == 3 and p[1] == "id" and method == "GET":
                self.require(ident, "datasources:read")
                return 200, {"id": self.ds_get("name", p[2])["id"]}
            if n == 2:
                if method == "GET":
                    self.require(ident, "datasources:read")
                    return 200, self.ds_dto(self.ds_get("id", p[1]))
                if method == "PUT":
                    return self.ds_update(ident, self.ds_get("id", p[1]), body)
                if method == "DELETE":
                    self.require(ident, "datasources:delete")
                    return self.ds_delete(ident, self.ds_get("id", p[1]), with_id=False)
        if head == "dashboards":
            if p[1:] == ["db"] and method == "POST":
                return self.dash_post(ident, body)
            if p[1:] == ["import"] and method == "POST":
                return self.dash_import(ident, body)
            if n == 3 and p[1] == "uid":
                if method == "GET":
                    return self.dash_get(ident, p[2])
                if method == "DELETE":
                    return self.dash_delete(ident, p[2])
            if n == 4 and p[1] == "uid" and p[3] == "versions" and method == "GET":
                return self.dash_versions(ident, p[2])
        if head == "search" and n == 1 and method == "GET":
            return self.search(ident, query)
        if head == "folders":
            if n == 1 and method == "GET":
                self.require(ident, "folders:read")
                items = sorted(self.folders(), key=lambda f: f["title"].lower())
                return 200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in items]
            if n == 1 and method == "POST":
                return self.folder_create(ident, body)
            if n == 2:
                if method == "GET":
                    self.require(ident, "folders:read")
                    return 200, self.folder_dto(ident, self.folder_get(p[1]))
                if method == "PUT":
                    return self.folder_update(ident, self.folder_get(p[1]), body)
                if method == "DELETE":
                    return self.folder_delete(ident, self.folder_get(p[1]))
        if head == "serviceaccounts":
            if n == 1 and method == "POST":
                return self.sa_create(ident, body)
            if p[1:] == ["search"] and method == "GET":
                return self.sa_search(ident, query)
            if n >= 2 and p[1] != "search":
                self.require(ident, "serviceaccounts:read")
                sa = self.sa_get(p[1])
                if n == 2:
                    if method == "GET":
                        return 200, self.sa_dto(sa, full=True)
                    if method == "PATCH":
                        return self.sa_patch(ident, sa, body)
                    if method == "DELETE":
                        return self.sa_delete(ident, sa)
                if n == 3 and p[2] == "tokens":
                    if method == "POST":
                        return self.token_create(ident, sa, body)
                    if method == "GET":
                        return self.token_list(ident, sa)
                if n == 4 and p[2] == "tokens" and method == "DELETE":
                    return self.token_delete(ident, sa, p[3])
        if head == "annotations":
            if n == 1 and method == "GET":
                return self.annotation_find(ident, query)
            if n == 1 and method == "POST":
                return self.annotation_create(ident, body)
            if n == 2 and method in ("GET", "PUT", "PATCH", "DELETE"):
                action = {"GET": "annotations:read", "PUT": "annotations:write", "PATCH": "annotations:write",
                          "DELETE": "annotations:delete"}[method]
                self.require(ident, action)
                a = self.annotation_get(p[1])
                if method == "GET":
                    return 200, self.annotation_dto(a)
                if method == "DELETE":
                    return self.annotation_delete(ident, a)
                return self.annotation_update(ident, a, body, patch=method == "PATCH")
        raise err(404, "Not found")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        if ":" in self.server_address[0]:
            import socket  # pylint: disable=import-outside-toplevel
            self.address_family = socket.AF_INET6
            self.socket = socket.socket(self.address_family, self.socket_type)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


class RequestHandler(http.server.BaseHTTPRequestHandler):
    double = None
    protocol_version = "HTTP/1.1"
    server_version = "Grafana"
    sys_version = ""

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        log("info", "context", "Request Completed", method=self.command, path=self.path.split("?")[0],
            status=args[1] if len(args) > 1 else "", remote_addr=self.client_address[0])

    def _dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        cookie = None
        name = self.double.cfg.get("auth", "login_cookie_name") or "grafana_session"
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == name:
                cookie = v
        extra = {}
        try:
            with self.double.lock:
                self.double.refresh_state()
                before = json.dumps(self.double.state, sort_keys=True)
                try:
                    status, payload, extra = self.double.handle(self.command, url.path, query, self.headers,
                                                                body, cookie)
                finally:
                    if json.dumps(self.double.state, sort_keys=True) != before:
                        self.double.save_state()
        except ApiError as exc:
            status, payload = exc.status, exc.body
        except Deferred as deferred:
            try:
                status, payload = deferred.work()
            except Exception as exc:  # pylint: disable=broad-except
                log("error", "context", "Internal error", error=repr(exc))
                status, payload = 500, {"message": "Internal Server Error", "traceID": ""}
        except Exception as exc:  # pylint: disable=broad-except
            log("error", "context", "Internal error", error=repr(exc))
            status, payload = 500, {"message": "Internal Server Error", "traceID": ""}
        self._send(status, payload, extra)

    def _send(self, status, payload, extra):
        extra = dict(extra or {})
        pretty = extra.pop("_pretty", False)
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload, indent=2 if pretty else None,
                              separators=None if pretty else (",", ":")).encode("utf-8")
            ctype = "application/json" + ("; charset=UTF-8" if pretty else "")
        else:
            data = str(payload).encode("utf-8")
            ctype = "text/plain; charset=utf-8"
        ctype = extra.pop("Content-Type", ctype)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "deny")
        for k, v in extra.items():
            self.send_header(k, v)
        if status == 304:
            # Go's net/http writes no body for 304 Not Modified
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------
def _cfg_args(rest):
    defaults, overrides = {}, {}
    for arg in rest:
        if arg.startswith("cfg:default."):
            k, _, v = arg[len("cfg:default."):].partition("=")
            defaults[k] = v
        elif arg.startswith("cfg:"):
            k, _, v = arg[len("cfg:"):].partition("=")
            overrides[k] = v
        else:
            raise SystemExit("unknown argument: %s" % arg)
    return defaults, overrides


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"] or argv[:1] == ["-v"]:
        print("grafana version %s (commit: %s, test double)" % (VERSION, COMMIT))
        return 0
    mode = "server"
    if argv[:1] in (["server"], ["cli"]):
        mode = argv.pop(0)
    parser = argparse.ArgumentParser(prog="grafana %s" % mode)
    parser.add_argument("--config", default=None)
    parser.add_argument("--homepath", default=None)
    parser.add_argument("--pidfile", default=None)
    parser.add_argument("--packaging", default=None)
    if mode == "cli":
        parser.add_argument("words", nargs="*")
        parser.add_argument("--password-from-stdin", action="store_true")
        args, rest = parser.parse_known_args(argv)
        defaults, overrides = _cfg_args(rest)
        if args.words[:2] != ["admin", "reset-admin-password"]:
            parser.error("only 'admin reset-admin-password' is implemented by the test double")
        password = sys.stdin.readline().rstrip("\n") if args.password_from_stdin else \
            (args.words[2] if len(args.words) > 2 else "")
        if not password:
            parser.error("a new password is required")
        double = GrafanaDouble(args.config, args.homepath, overrides, defaults)
        double.load_state()
        double.reset_admin_password(password)
        print("Admin password changed successfully \u2714")
        return 0
    args, rest = parser.parse_known_args(argv)
    defaults, overrides = _cfg_args(rest)
    double = GrafanaDouble(args.config, args.homepath, overrides, defaults)
    if args.pidfile:
        os.makedirs(os.path.dirname(os.path.abspath(args.pidfile)), exist_ok=True)
        with open(args.pidfile, "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))

    def on_term(signum, frame):  # pylint: disable=unused-argument
        log("info", "server", "Shutdown started", reason="System signal: %s" % signal.Signals(signum).name)
        threading.Thread(target=double.stop, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    log("info", "settings", "Starting Grafana", version=VERSION, commit=COMMIT, compiled="test double")
    log("info", "settings", "Config loaded from", file=args.config or "")
    log("info", "settings", "Path Data", path=double.data_dir)
    log("info", "settings", "Path Provisioning", path=double.provisioning_dir)
    double.start(block=True)
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
