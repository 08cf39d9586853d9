# APP_MODULE `not_callable:application` names something that is not callable.
application = 42
