"""Minimal Django settings for the integration tests: no database, no admin,
one template directory. Served as `--chdir tests/apps djangoproj.wsgi`."""
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = 'rustcorn-tests-not-a-secret'
DEBUG = False
ALLOWED_HOSTS = ['*']

INSTALLED_APPS = []
MIDDLEWARE = [
    'django.middleware.common.CommonMiddleware',
]
ROOT_URLCONF = 'djangoproj.urls'
WSGI_APPLICATION = 'djangoproj.wsgi.application'

DATABASES = {}

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [BASE_DIR / 'templates'],
        'APP_DIRS': False,
        'OPTIONS': {},
    },
]

USE_TZ = True
USE_I18N = False
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

# Errors go to the server's error log (stderr), never to e-mail.
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'stderr': {'class': 'logging.StreamHandler'}},
    'loggers': {'django': {'handlers': ['stderr'], 'level': 'WARNING'}},
}
