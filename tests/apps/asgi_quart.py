"""A Quart app."""

from quart import Quart, request

app = Quart(__name__)


@app.route("/hello/<name>")
async def hello(name):
    return {"hello": name, "q": request.args.get("q")}


@app.route("/echo", methods=["POST"])
async def echo():
    data = await request.get_data()
    return {"len": len(data)}
