# Dictionary settings: one of strings (secure_scheme_headers) and one of any
# JSON values (logconfig_dict, handed to logging.config.dictConfig in workers).
secure_scheme_headers = {"X-Scheme": "yes"}
logconfig_dict = {"version": 1, "root": {"level": "INFO"}}
