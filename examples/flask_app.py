"""A small Flask app served by rustcorn.

    python3 -m venv .venv && .venv/bin/pip install 'flask>=3,<4'
    VIRTUAL_ENV=$PWD/.venv rustcorn -b 127.0.0.1:8000 --workers=2 \
        --chdir examples flask_app:app

Then: curl 'http://127.0.0.1:8000/?name=you', curl -d '{"a": 1, "b": 2}' \
-H 'Content-Type: application/json' http://127.0.0.1:8000/sum
"""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get('/')
def index():
    return 'Hello, %s!\n' % request.args.get('name', 'World')


@app.post('/sum')
def add():
    doc = request.get_json()
    return jsonify(sum=doc['a'] + doc['b'])


@app.get('/count')
def count():
    n = request.args.get('n', 10, type=int)
    # A generator body is streamed to the client as it is produced.
    return app.response_class(('%d\n' % i for i in range(n)), mimetype='text/plain')
