# Booleans: False for a flag that turns a feature off; defaults stay quiet.
sendfile = False
reuse_port = False
check_config = "false"
