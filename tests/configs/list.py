# Lists of strings, one flag each.
bind = ["127.0.0.1:8123", "unix:/tmp/rustcorn-corpus.sock"]
raw_env = ["A=1", "B=x=y"]
