"""ASGI entry point: `rustcorn -k asgi --chdir tests/apps djangoproj.asgi`."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'djangoproj.settings')

application = get_asgi_application()
