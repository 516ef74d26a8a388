-- Generic wrk request script: the method, body and content type come from the
-- environment, so one script serves every scenario that is not a plain GET.
--
--   WRK_METHOD        e.g. POST (default GET)
--   WRK_BODY          request body, sent as is (e.g. a form: a=1&b=2)
--   WRK_CONTENT_TYPE  e.g. application/x-www-form-urlencoded
--
-- wrk -s scripts/bench/request.lua -H 'Authorization: Bearer …' http://127.0.0.1:9015/api/…
-- Headers given with -H (such as Authorization) are kept.

wrk.method = os.getenv("WRK_METHOD") or "GET"

local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
end

local contentType = os.getenv("WRK_CONTENT_TYPE")
if contentType ~= nil and contentType ~= "" then
  wrk.headers["Content-Type"] = contentType
end
