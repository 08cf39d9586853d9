# --reload's extra files must exist (a glob pattern may match nothing yet).
reload = True
reload_extra_files = ["templates/no-such-page.html"]
