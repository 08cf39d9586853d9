# Picked up as ./gunicorn.conf.py when rustcorn runs in this directory without -c.
workers = 6
wsgi_app = "hello"
chdir = "../../apps"
