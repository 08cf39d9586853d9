"""WSGI entry point: `djangoapp.wsgi:application` with --chdir benches/apps."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")

application = get_wsgi_application()
