-- stats-*-cold: every request asks another window, so that no answer comes from StatsService's
-- answer cache and each one is computed from the read model (blocks of whole days plus the
-- rows of the partial first and last day). The window's end moves back one second per request
-- (each wrk thread on its own seconds); its start is the one in the URL.
--
-- wrk -s scripts/bench/stats-cold.lua -H 'Authorization: Bearer …' 'http://127.0.0.1:9015/api/stats/sign?start_time=2025-11-29'

local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local n = 0
local last = os.time()
request = function()
  n = n + 1
  local t = os.date("%Y-%m-%d%%20%H:%M:%S", last - (n * 16 + (id or 0)))
  return wrk.format("GET", wrk.path .. "&end_time=" .. t)
end
