# Loaded with -c python:tests.configs.module_conf
workers = 5
