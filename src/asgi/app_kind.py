"""Is the app an ASGI app? Without importing inspect or asyncio, which a WSGI worker
would otherwise carry for nothing (and may not be able to import after --user)."""

CO_COROUTINE = 0x80


def _is_coroutine_function(f):
    f = getattr(f, "__func__", f)  # a bound method
    while type(f).__name__ == "partial" and hasattr(f, "func"):
        f = f.func
    if getattr(f, "_is_coroutine_marker", None) is not None:  # inspect.markcoroutinefunction
        return True
    code = getattr(f, "__code__", None)
    return code is not None and bool(code.co_flags & CO_COROUTINE)


def is_asgi_app(app):
    """An ASGI 3 app is a coroutine function, or an object whose __call__ is one."""
    return _is_coroutine_function(app) or _is_coroutine_function(getattr(type(app), "__call__", None))
