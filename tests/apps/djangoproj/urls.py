from django.urls import path

from . import views

urlpatterns = [
    path('', views.index),
    path('form', views.form),
    path('json', views.json_echo),
    path('upload', views.upload),
    path('cookie/set', views.cookie_set),
    path('cookie/read', views.cookie_read),
    path('redirect', views.go_elsewhere),
    path('target', views.target),
    path('stream', views.stream),
    path('async', views.async_view),
    path('sync', views.sync_view),
]
