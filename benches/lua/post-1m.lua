-- wrk script for the `echo-1m` workload: every request is a POST of a
-- 1 MiB body to the path given on the command line (benches/apps/hello.py
-- echoes it back).
wrk.method = "POST"
wrk.body = string.rep("x", 1024 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
