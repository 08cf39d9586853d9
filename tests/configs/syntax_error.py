# A syntax error on line 3.
workers = 2
bind = ("127.0.0.1:1",
