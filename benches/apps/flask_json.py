"""Flask app for the `flask-json` workload: a small JSON document per request.

GET /json -> {"message": "Hello, World!", "items": [...]} through flask.jsonify,
so the request goes through Flask's routing, request context and JSON provider.
"""

from flask import Flask, jsonify

app = Flask(__name__)

ITEMS = [{"id": i, "name": f"item-{i}", "price": i * 1.25} for i in range(10)]


@app.get("/json")
def json_view():
    return jsonify(message="Hello, World!", items=ITEMS)


application = app
