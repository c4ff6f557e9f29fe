-- wrk script for bench/throughput.py: browser-like requests rotating over a plan.
--
--   WRK_PLAN=/tmp/plan.tsv wrk -t2 -c16 -d10s --timeout 10s -s bench/wrk/portal.lua http://127.0.0.1:PORT
--
-- The plan (written by bench/throughput.py) is tab-separated, one item a line:
--   header  <name>  <value>            sent with every request (Cookie, HX-Request, Accept-Encoding)
--   read    <method>  <path>           a read; reads are sent in turn
--   write   <method>  <path>  <body>   a write; "{n}" in the body becomes a number unique to the run
--   wheader <name>  <value>            sent with writes only (Content-Type, X-CSRFToken)
--   option  write_every  <N>           every Nth request of a thread is a write (0: none)
--   option  count_status  1            count responses by status class (makes wrk read bodies)
-- done() prints one line "WRK_JSON {...}": requests, duration, bytes, socket errors,
-- latency percentiles (microseconds, wrk's histogram of 1 us bins) and the counters.

local plan_path = os.getenv("WRK_PLAN")
if plan_path == nil then
  error("WRK_PLAN is not set")
end

local common_headers = {}
local write_headers = {}
local read_items = {}
local write_items = {}
local write_every = 0
local count_status = false

local function split_tabs(line)
  local fields = {}
  for field in string.gmatch(line, "([^\t]*)\t?") do
    table.insert(fields, field)
  end
  -- gmatch yields a trailing empty match; drop it
  if #fields > 0 and fields[#fields] == "" and string.sub(line, -1) ~= "\t" then
    table.remove(fields)
  end
  return fields
end

local file = assert(io.open(plan_path, "r"))
for line in file:lines() do
  if line ~= "" then
    local f = split_tabs(line)
    local kind = f[1]
    if kind == "header" then
      common_headers[f[2]] = f[3]
    elseif kind == "wheader" then
      write_headers[f[2]] = f[3]
    elseif kind == "read" then
      table.insert(read_items, {method = f[2], path = f[3]})
    elseif kind == "write" then
      table.insert(write_items, {method = f[2], path = f[3], body = f[4] or ""})
    elseif kind == "option" and f[2] == "write_every" then
      write_every = tonumber(f[3])
    elseif kind == "option" and f[2] == "count_status" then
      count_status = f[3] == "1"
    end
  end
end
file:close()

local function merged(extra)
  local h = {}
  for k, v in pairs(common_headers) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- Main state: the threads, to gather their counters in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Per-thread state (globals, so that done() can read them with thread:get).
sent_reads, sent_writes = 0, 0
status_2xx, status_3xx, status_4xx, status_5xx, status_other = 0, 0, 0, 0, 0
write_marker_seen = 0
local counter = 0
local formatted_reads = {}

function init(args)
  for i, item in ipairs(read_items) do
    formatted_reads[i] = wrk.format(item.method, item.path, merged(nil), nil)
  end
end

function request()
  counter = counter + 1
  if write_every > 0 and #write_items > 0 and counter % write_every == 0 then
    sent_writes = sent_writes + 1
    local item = write_items[(sent_writes - 1) % #write_items + 1]
    local unique = tostring((thread_id or 0) * 10000000 + sent_writes)
    local body = (string.gsub(item.body, "{n}", unique))
    return wrk.format(item.method, item.path, merged(write_headers), body)
  end
  sent_reads = sent_reads + 1
  return formatted_reads[(sent_reads - 1) % #formatted_reads + 1]
end

if count_status then
  function response(status, headers, body)
    if status >= 200 and status < 300 then
      status_2xx = status_2xx + 1
    elseif status >= 300 and status < 400 then
      status_3xx = status_3xx + 1
    elseif status >= 400 and status < 500 then
      status_4xx = status_4xx + 1
    elseif status >= 500 then
      status_5xx = status_5xx + 1
    else
      status_other = status_other + 1
    end
    -- The autosave's answer says "Draft saved at ..." when the draft was written.
    if body ~= nil and string.find(body, "Draft saved at", 1, true) then
      write_marker_seen = write_marker_seen + 1
    end
  end
end

local counters = {"sent_reads", "sent_writes", "status_2xx", "status_3xx", "status_4xx", "status_5xx",
                  "status_other", "write_marker_seen"}

function done(summary, latency, requests)
  local totals = {}
  for _, name in ipairs(counters) do totals[name] = 0 end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(counters) do
      totals[name] = totals[name] + (tonumber(thread:get(name)) or 0)
    end
  end
  local parts = {}
  local function add(name, value) table.insert(parts, string.format('"%s": %s', name, value)) end
  add("requests", summary.requests)
  add("duration_us", summary.duration)
  add("bytes", summary.bytes)
  add("errors_connect", summary.errors.connect)
  add("errors_read", summary.errors.read)
  add("errors_write", summary.errors.write)
  add("errors_status", summary.errors.status)
  add("errors_timeout", summary.errors.timeout)
  add("latency_min_us", latency.min)
  add("latency_mean_us", string.format("%.1f", latency.mean))
  add("latency_max_us", latency.max)
  for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
    add(string.format("latency_p%s_us", string.gsub(tostring(p), "%.", "_")), latency:percentile(p))
  end
  add("count_status", count_status and "true" or "false")
  for _, name in ipairs(counters) do add(name, totals[name]) end
  io.write("WRK_JSON {" .. table.concat(parts, ", ") .. "}\n")
end
