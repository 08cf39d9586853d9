# A list where an integer belongs, assigned on line 4.
workers = 2
if workers:
    timeout = [30]
