-- Authenticated POST /api/articles under load.
--
-- Every request must carry a *different* title: the slug is derived from the
-- title, so repeating one would measure the 422/409 "already exists" path
-- instead of an insert. Titles are "<prefix> t<thread id> n<counter>":
--   * the thread id is handed to each wrk thread by setup() (runs in the main
--     Lua state, once per thread before the run starts);
--   * the counter is per thread (each wrk thread has its own Lua state);
--   * the prefix comes from $BENCH_TITLE_PREFIX, which bench/api sets to a
--     different value for the warm-up and the measured run against the same
--     database (an environment variable rather than a script argument, so it
--     does not depend on where wrk's argument parsing puts the URL).
-- Titles stay ASCII on purpose so nothing here depends on slug encoding.
--
-- The Authorization and Content-Type headers come from the wrk command line
-- (-H ...) and land in wrk.headers, which wrk.format() uses when it is given
-- no header table of its own.

local report = require("report")

local next_id = 0
function setup(thread)
   next_id = next_id + 1
   thread:set("thread_id", next_id)
end

local prefix = os.getenv("BENCH_TITLE_PREFIX") or ("bench-" .. os.time())
local counter = 0

function request()
   counter = counter + 1
   local title = string.format("%s t%d n%d", prefix, thread_id or 0, counter)
   local body = string.format(
      '{"article":{"title":"%s","description":"Written by the load test",' ..
      '"body":"Request %d of thread %d. The quick brown fox jumps over the lazy dog.",' ..
      '"tagList":["bench","load"]}}',
      title, counter, thread_id or 0)
   return wrk.format("POST", nil, nil, body)
end

done = report.done
