# Names that are not settings are ignored, as Gunicorn ignores them.
import multiprocessing

WORKERS = 9
my_setting = "x"
workers = 2
