-- wrk script for bench/php.sh: every request enqueues one small task over
-- deferd's HTTP API (POST /v1/queues/{queue}/tasks), on kept-alive
-- connections (wrk's HTTP/1.1 default).
--   wrk -t1 -c50 -d3s -s post.lua http://127.0.0.1:11380
-- BENCH_HTTP_QUEUE and BENCH_HTTP_BODY in the environment override the
-- queue and the request body. No response() callback: it would slow wrk
-- down; php.sh reads wrk's "Non-2xx or 3xx responses" line instead, and
-- compares the server's count of tasks with wrk's count of requests.
local queue = os.getenv("BENCH_HTTP_QUEUE") or "bench"
wrk.method = "POST"
wrk.path = "/v1/queues/" .. queue .. "/tasks"
wrk.body = os.getenv("BENCH_HTTP_BODY") or '{"payload":{"to":"x@example.org","n":1}}'
wrk.headers["Content-Type"] = "application/json"
