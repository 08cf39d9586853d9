"""FastAPI app for the `fastapi-json` workload: a small JSON document per request.

GET /json -> {"message": "Hello, World!", "items": [...]}: a dict returned from an
async path operation, so the request goes through Starlette's routing, FastAPI's
dependency solving and JSON encoding (the same document as flask_json.py).
"""

from fastapi import FastAPI

app = FastAPI()

ITEMS = [{"id": i, "name": f"item-{i}", "price": i * 1.25} for i in range(10)]


@app.get("/json")
async def json_view():
    return {"message": "Hello, World!", "items": ITEMS}
