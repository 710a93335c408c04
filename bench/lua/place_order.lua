-- Authenticated POST /api/orders under load (bench/orders).
--
-- Every request must carry a *different* Idempotency-Key: a repeated key replays the first
-- response without placing anything, so the run would measure the replay path instead of
-- "reserve stock, write the order and its jobs". Keys are "<prefix>-t<thread id>-n<counter>":
--   * the thread id is handed to each wrk thread by setup() (main Lua state, once per thread
--     before the run starts); the counter is per thread (each thread has its own Lua state);
--   * the prefix comes from $BENCH_KEY_PREFIX, which bench/orders sets differently for every
--     warm-up and measured run against the same database.
--
-- Each order is one unit of one menu item. The items ($BENCH_ITEM_IDS, comma-separated, all of
-- store $BENCH_STORE_ID) are taken in turn, so the stock of several items lasts the run (the
-- catalogue caps an item at 100,000 units) and no single stock row takes every write.
--
-- The Authorization and Content-Type headers come from the command line (-H ...) and live in
-- wrk.headers; the key is set there too, per request, so wrk.format() sends all three.

local report = require("report")

local next_id = 0
function setup(thread)
   next_id = next_id + 1
   thread:set("thread_id", next_id)
end

local prefix = os.getenv("BENCH_KEY_PREFIX") or ("bench-" .. os.time())
local store_id = tonumber(os.getenv("BENCH_STORE_ID") or "")
local items = {}
for id in string.gmatch(os.getenv("BENCH_ITEM_IDS") or "", "%d+") do
   items[#items + 1] = tonumber(id)
end
assert(store_id and #items > 0, "place_order.lua needs BENCH_STORE_ID and BENCH_ITEM_IDS")

local counter = 0

function request()
   counter = counter + 1
   local item = items[(counter + (thread_id or 0)) % #items + 1]
   wrk.headers["Idempotency-Key"] = string.format("%s-t%d-n%d", prefix, thread_id or 0, counter)
   local body = string.format(
      '{"order":{"storeId":%d,"items":[{"menuItemId":%d,"quantity":1}]}}', store_id, item)
   return wrk.format("POST", nil, nil, body)
end

done = report.done
