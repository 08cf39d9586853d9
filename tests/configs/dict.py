# A dictionary setting rustcorn accepts and ignores with a warning.
logconfig_dict = {"root": "INFO"}
