"""A Flask app exercising what real deployments use.

    GET  /?name=N            b'Hello, N!' (N defaults to World)
    POST /form               form fields name, lang → b'form name=<name> lang=<lang>'
    POST /json               {"a": x, "b": y} → {"sum": x + y, "echo": <request json>}
    POST /upload             multipart field 'file' (+ form field 'note') →
                             b'upload <filename> size=<n> sum=<byte sum> note=<note>'
    GET  /cookie/set         sets flavor=oatmeal
    GET  /cookie/read        b'flavor=<cookie value or missing>'
    GET  /redirect           302 to /target
    GET  /target             b'redirect target'
    GET  /stream?n=N         streamed generator of b'line <i>\n'
    GET  /python             {"prefix": sys.prefix, "version": "3.X", "flask": flask's path,
                              "server": environ SERVER_SOFTWARE}
"""
import sys

import flask
from flask import Flask, jsonify, redirect, request, stream_with_context

app = Flask(__name__)


@app.get('/')
def index():
    return 'Hello, %s!' % request.args.get('name', 'World')


@app.post('/form')
def form():
    return 'form name=%s lang=%s' % (request.form['name'], request.form['lang'])


@app.post('/json')
def json_echo():
    doc = request.get_json()
    return jsonify(sum=doc['a'] + doc['b'], echo=doc)


@app.post('/upload')
def upload():
    f = request.files['file']
    data = f.read()
    return 'upload %s size=%d sum=%d note=%s' % (
        f.filename, len(data), sum(data), request.form.get('note', ''))


@app.get('/cookie/set')
def cookie_set():
    resp = app.make_response('cookie set')
    resp.set_cookie('flavor', 'oatmeal')
    return resp


@app.get('/cookie/read')
def cookie_read():
    return 'flavor=%s' % request.cookies.get('flavor', 'missing')


@app.get('/redirect')
def go_elsewhere():
    return redirect('/target')


@app.get('/target')
def target():
    return 'redirect target'


@app.get('/stream')
def stream():
    n = request.args.get('n', 5, type=int)

    @stream_with_context
    def lines():
        for i in range(n):
            yield 'line %d\n' % i

    return app.response_class(lines(), mimetype='text/plain')


@app.get('/python')
def python():
    return jsonify(
        prefix=sys.prefix,
        version='%d.%d' % sys.version_info[:2],
        flask=flask.__file__,
        server=request.environ['SERVER_SOFTWARE'],
    )
