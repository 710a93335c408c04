-- Shared by every wrk run of bench/api (loaded with `require "report"`;
-- bench/api puts bench/lua on LUA_PATH).
--
-- Why a done() hook instead of scraping wrk's human-readable text: wrk rounds
-- and unit-formats its latency lines ("1.23ms", "850.00us", "1.02s"). Here we
-- read the same HdrHistogram directly, in microseconds, and print one line
-- that bench/api parses. The human-readable output is still printed above it
-- (and kept in target/bench/) for the record.
--
-- Defining only done() (no request/response hooks) keeps wrk's fast path: a
-- plain GET is still pre-formatted once, so the GET runs are not slowed down
-- by Lua.

local report = {}

function report.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d " ..
      "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      -- wrk counts a response as a status error when its status is > 399
      -- (printed as "Non-2xx or 3xx responses"). None of the benchmarked
      -- endpoints redirects, so this is the non-2xx count in practice.
      e.status, e.connect, e.read, e.write, e.timeout))
end

return report
