-- wrk script for the customer-create scenario: POST /api/customers/customers with a JSON body.
-- realName is fixed; nickName and phoneNumber are different in every request (per wrk thread
-- and request number), so the data stays realistic. The organization comes from the
-- environment:
--
--   WRK_ORG_ID   id of an existing organization (default 1)
--
-- wrk -s scripts/bench/customer-create.lua -H 'Authorization: Bearer …' http://127.0.0.1:9015/api/customers/customers
-- Headers given with -H (such as Authorization) are kept.

local threadCount = 0
function setup(thread)
  threadCount = threadCount + 1
  thread:set("threadNumber", threadCount)
end

local orgID = tonumber(os.getenv("WRK_ORG_ID") or "1") or 1
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local n = (threadNumber or 0) * 10000000 + counter
  -- 198xxxxxxxx: a prefix the seeder does not use. nickName "wrk-…" has no 4-letter run, so it
  -- never matches the customer-search term.
  local body = string.format(
    '{"realName":"压测客户","nickName":"wrk-%d","phoneNumber":"198%08d","organization_id":[%d]}',
    n, n % 100000000, orgID)
  return wrk.format(nil, nil, nil, body)
end
