"""The request as the environ has it, as JSON (tests/integration/corpus.rs)."""

import json


def application(environ, start_response):
    body = environ["wsgi.input"].read()
    doc = {k: v for k, v in environ.items()
           if k.startswith("HTTP_") or k in (
               "REQUEST_METHOD", "RAW_URI", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
               "CONTENT_TYPE", "CONTENT_LENGTH", "wsgi.url_scheme")}
    doc["body"] = body.hex()
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]
