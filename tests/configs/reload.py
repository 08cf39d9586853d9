# Code reloading is refused; ignoring it would not do what was asked.
reload = True
