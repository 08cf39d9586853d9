# A server started from this file alone: app, socket and workers all come from here.
wsgi_app = "hello"
bind = "127.0.0.1:0"
chdir = "tests/apps"
workers = 2
