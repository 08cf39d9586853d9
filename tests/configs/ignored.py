# Settings rustcorn ignores with a warning.
spew = True
worker_tmp_dir = "/dev/shm"
