"""The same features as tests/apps/flask_app.py, the Django way; index renders
templates/greeting.html."""
import json

from django.http import (HttpResponse, HttpResponseNotAllowed, JsonResponse,
                         StreamingHttpResponse)
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt


def index(request):
    return render(request, 'greeting.html',
                  {'name': request.GET.get('name', 'World')},
                  content_type='text/plain')


@csrf_exempt
def form(request):
    if request.method != 'POST':
        return HttpResponseNotAllowed(['POST'])
    return HttpResponse(
        'form name=%s lang=%s' % (request.POST['name'], request.POST['lang']),
        content_type='text/plain')


@csrf_exempt
def json_echo(request):
    if request.method != 'POST':
        return HttpResponseNotAllowed(['POST'])
    doc = json.loads(request.body)
    return JsonResponse({'sum': doc['a'] + doc['b'], 'echo': doc})


@csrf_exempt
def upload(request):
    if request.method != 'POST':
        return HttpResponseNotAllowed(['POST'])
    f = request.FILES['file']
    data = f.read()
    return HttpResponse(
        'upload %s size=%d sum=%d note=%s' % (
            f.name, len(data), sum(data), request.POST.get('note', '')),
        content_type='text/plain')


def cookie_set(request):
    resp = HttpResponse('cookie set', content_type='text/plain')
    resp.set_cookie('flavor', 'oatmeal')
    return resp


def cookie_read(request):
    return HttpResponse('flavor=%s' % request.COOKIES.get('flavor', 'missing'),
                        content_type='text/plain')


def go_elsewhere(request):
    return redirect('/target')


def target(request):
    return HttpResponse('redirect target', content_type='text/plain')


def stream(request):
    n = int(request.GET.get('n', '5'))
    return StreamingHttpResponse(('line %d\n' % i for i in range(n)),
                                 content_type='text/plain')


async def async_view(request):
    """Served on the event loop under ASGI (an `async def` view)."""
    import asyncio
    await asyncio.sleep(0)
    return JsonResponse({'kind': 'async', 'path': request.path, 'q': request.GET.get('q')})


def sync_view(request):
    """Run in a thread by Django under ASGI (a plain view)."""
    import threading
    return JsonResponse({'kind': 'sync', 'thread': threading.current_thread().name})
