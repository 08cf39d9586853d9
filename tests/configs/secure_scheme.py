# secure_scheme_headers is config-file only in Gunicorn: this one replaces the
# default table, so X-Forwarded-Proto no longer counts and X-Scheme does.
secure_scheme_headers = {"x-scheme": "yes"}
