"""A FastAPI app for tests/integration/asgi_frameworks.rs."""

import asyncio
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

tails = {"done": 0}


@asynccontextmanager
async def lifespan(app):
    yield {"db": "connected at startup"}


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price": item.price, "taxed": round(item.price * 1.2, 2)}


@app.post("/upload")
async def upload(note: str = Form(...), file: UploadFile = File(...)):
    data = await file.read()
    return {"note": note, "filename": file.filename, "size": len(data), "head": data[:10].decode("latin-1")}


@app.get("/stream")
async def stream():
    async def numbers():
        for i in range(5):
            yield b"line %d\n" % i
            await asyncio.sleep(0)

    return StreamingResponse(numbers(), media_type="text/plain")


async def tail():
    await asyncio.sleep(0.2)
    tails["done"] += 1


@app.get("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(tail)
    return {"queued": True}


@app.get("/tails")
async def tails_done():
    return {"done": tails["done"]}


@app.get("/state")
async def state(request: Request):
    return {"db": request.state.db}


@app.get("/loop")
async def loop_kind():
    return {"module": type(asyncio.get_running_loop()).__module__}


from fastapi import WebSocket, WebSocketDisconnect  # noqa: E402

ws_log = {"disconnects": 0}


@app.websocket("/ws/{room}")
async def ws_room(websocket: WebSocket, room: str):
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_json({"room": room, "echo": text, "db": websocket.state.db})
    except WebSocketDisconnect:
        ws_log["disconnects"] += 1


@app.get("/ws-disconnects")
async def ws_disconnects():
    return ws_log


from fastapi.responses import FileResponse  # noqa: E402


@app.get("/file")
async def file(path: str, request: Request):
    """Starlette's FileResponse: with the pathsend extension in the scope (which the
    x-pathsend header reports), it sends the path and the server sends the file."""
    offered = "http.response.pathsend" in request.scope.get("extensions", {})
    return FileResponse(path, headers={"x-pathsend": "offered" if offered else "no"})
