"""A Litestar app."""

from litestar import Litestar, get, post


@get("/hello/{name:str}")
async def hello(name: str) -> dict:
    return {"hello": name}


@post("/double")
async def double(data: dict) -> dict:
    return {"n": data["n"] * 2}


app = Litestar(route_handlers=[hello, double])
