"""Turns Gunicorn's request corpus into JSON for tests/integration/corpus.rs.

Usage: python expect.py CORPUS_DIR  (CORPUS_DIR holds valid/ and invalid/)

Each .py expectation is loaded the way Gunicorn's own tests/treq.py loads it (with
`uri()` and a fresh `cfg`), needing only the gunicorn package from the test venv;
each .http file is decoded with treq's escapes. One JSON object per line:
  {"name", "kind": "valid"|"invalid", "data": hex of the request bytes,
   "settings": {name: value} that differ from Gunicorn's defaults,
   "requests": [...] (valid) or "error": exception class name (invalid)}
"""

import glob
import importlib.machinery
import json
import os
import sys
import types

from gunicorn.config import Config
from gunicorn.util import split_request_uri

# The settings a corpus file may change (see `cfg.set` in the corpus).
SETTINGS = [
    "casefold_http_method", "header_map", "permit_unconventional_http_method",
    "proxy_protocol", "strip_header_spaces", "forwarded_allow_ips",
    "limit_request_field_size", "limit_request_fields", "limit_request_line",
    "permit_obsolete_folding", "permit_unconventional_http_version",
]


def uri(data):
    parts = split_request_uri(data)
    return {"raw": data, "path": parts.path or "", "query": parts.query or "",
            "fragment": parts.fragment or ""}


def load_py(fname):
    mod = types.ModuleType("__config__")
    mod.uri = uri
    mod.cfg = Config()
    importlib.machinery.SourceFileLoader("__config__", fname).exec_module(mod)
    return mod


def decode(raw):
    data = raw.replace(b"\n", b"").replace(b"\\r\\n", b"\r\n")
    data = data.replace(b"\\0", b"\000").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i:i + 2] == b"\\x" and i + 3 < len(data):
            try:
                out.append(int(data[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out.append(data[i])
        i += 1
    return bytes(out)


def as_bytes(body):
    """A few expectations write an empty body as ''."""
    return body.encode("latin-1") if isinstance(body, str) else body


def plain(value):
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def main(corpus):
    defaults = Config()
    for kind in ("valid", "invalid"):
        for http in sorted(glob.glob(os.path.join(corpus, kind, "*.http"))):
            name = os.path.basename(http)
            mod = load_py(http[:-5] + ".py")
            with open(http, "rb") as f:
                data = decode(f.read())
            settings = {}
            for s in SETTINGS:
                value = getattr(mod.cfg, s)
                if value != getattr(defaults, s):
                    settings[s] = plain(value)
            case = {"name": name, "kind": kind, "data": data.hex(), "settings": settings}
            expect = mod.request
            if kind == "invalid":
                case["error"] = expect.__name__
            else:
                expect = expect if isinstance(expect, list) else [expect]
                case["requests"] = [{
                    "method": r["method"],
                    "path": r["uri"]["path"],
                    "query": r["uri"]["query"],
                    "fragment": r["uri"]["fragment"],
                    "raw_uri": r["uri"]["raw"],
                    "version": list(r["version"]),
                    "headers": [[n, v] for n, v in r["headers"]],
                    "body": as_bytes(r.get("body", b"")).hex(),
                    "trailers": [[n, v] for n, v in r.get("trailers", [])],
                } for r in expect]
            print(json.dumps(case))


if __name__ == "__main__":
    main(sys.argv[1])
