-- wrk script for the follow-create scenario: POST /api/record/follow with a JSON body naming a
-- seeded potential record, the administrator as follower and the current time. From the
-- environment:
--
--   WRK_POTENTIAL_ID   id of an existing potential record (default 1)
--
-- wrk -s scripts/bench/follow-create.lua -H 'Authorization: Bearer …' http://127.0.0.1:9015/api/record/follow
-- Headers given with -H (such as Authorization) are kept.

local potentialID = tonumber(os.getenv("WRK_POTENTIAL_ID") or "1") or 1
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local body = string.format(
    '{"protent_id":%d,"follower_id":[1],"record_time":"%s","event":3,"event_note":"wrk %d"}',
    potentialID, os.date("%Y-%m-%d %H:%M:%S"), counter)
  return wrk.format(nil, nil, nil, body)
end
