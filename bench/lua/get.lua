-- Plain GET runs (healthz baseline, article list, one article, comments).
-- The URL and headers come from the wrk command line; this script only adds
-- the machine-readable summary (see report.lua).
done = require("report").done
