# Integers, as ints or strings of digits.
workers = 3
timeout = 17
backlog = 64
graceful_timeout = "5"
keepalive = 4
worker_connections = 50
threads = 2
