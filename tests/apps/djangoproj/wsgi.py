"""WSGI entry point: `rustcorn --chdir tests/apps djangoproj.wsgi`."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'djangoproj.settings')

application = get_wsgi_application()
