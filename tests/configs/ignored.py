# Settings rustcorn ignores with a warning.
spew = True
tmp_upload_dir = "/var/tmp/uploads"
