# The legacy form: one string for a list setting.
bind = "127.0.0.1:8124"
