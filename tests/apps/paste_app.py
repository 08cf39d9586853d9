"""A PasteDeploy app for `--paste paste_app.ini`: factories that report what PasteDeploy
passed them (global and local config), and a filter for a pipeline."""

import json
import logging

log = logging.getLogger("paste_app")


def make_app(global_conf, **local_conf):
    def app(environ, start_response):
        log.info("served %s", environ["PATH_INFO"])
        body = json.dumps({
            "greeting": local_conf.get("greeting"),
            "global_conf": global_conf,
            "tags": environ.get("paste_app.tags", []),
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def make_tagger(global_conf, tag="tagged"):
    def wrap(app):
        def tagger(environ, start_response):
            environ.setdefault("paste_app.tags", []).append(tag)
            return app(environ, start_response)

        return tagger

    return wrap
