-- deployctl's zero-reload upstream for nginx with Lua (Debian's
-- libnginx-mod-http-lua, OpenResty). registrar nginx --mode dynamic writes
-- this file into the conf dir and refers to it from three phases, with
-- $deployctl_upstream set to the upstream's name:
--   content  (the control socket) POST /backends replaces the instance list,
--            GET /backends answers the version nginx serves
--   access   (the site) 503 at once while no instance is registered
--   balancer (the upstream) round robin over the list; a refused
--            connection moves to the next instance (proxy_next_upstream)
-- The list is one value in the shared dict deployctl_<name>, "VERSION\n"
-- then one "IP:PORT" per line, replaced whole, so a worker never sees a
-- partial list. registrar writes the same text to <name>.backends beside
-- this file; after a restart the first request loads it from there.
-- The upstream's name: $deployctl_upstream where our site or control
-- server sets it, else the argument the upstream's own balancer block
-- passes, so a server block of one's own needs nothing of ours but
-- proxy_pass http://NAME.
local name = ngx.var.deployctl_upstream
if name == nil or name == "" then
  name = ... -- the upstream's balancer block runs this chunk with its name
end
local dict = name and ngx.shared["deployctl_" .. name]
if not dict then
  ngx.log(ngx.ERR, "deployctl: no lua_shared_dict deployctl_", tostring(name),
    ": proxy_pass http://UPSTREAM to an upstream registrar nginx --mode dynamic renders, or set $deployctl_upstream")
  return ngx.exit(500)
end
-- Per-worker state survives requests in package.loaded.
local state = package.loaded.deployctl_state
if not state then
  state = {}
  package.loaded.deployctl_state = state
end
local s = state[name]
if not s then
  -- hosts and ports are reused from list to list, so a change makes
  -- little garbage in a worker however long the list.
  -- down[i]: until when instance i is skipped after a failed connection
  -- (passive failure marking, as reload mode's max_fails=1 fail_timeout).
  s = { text = nil, hosts = {}, ports = {}, n = 0, rr = 0, down = {} }
  state[name] = s
end

-- The address rule is registry.CheckAddr's (the registrar refuses these
-- first; this is the balancer's own guard, and TestAddressRuleIsOne runs
-- one table through both): IPv4 without leading zeros, IPv6 in brackets,
-- a port 1-65535 without leading zeros, and no address an instance never
-- has. special4 and special6 report those: this network (0/8),
-- link-local (169.254/16: the cloud's metadata service), multicast,
-- reserved and broadcast (224/3); for IPv6 the unspecified address,
-- link-local fe80::/10, multicast ff00::/8, and any embedded IPv4 (the
-- registrar writes those as IPv4). Loopback is the registrar's call
-- (--allow-loopback).
local function special4(a, b)
  return a == 0 or (a == 169 and b == 254) or a >= 224
end

local function special6(h)
  return h:find(".", 1, true) ~= nil or h:match("^[0:]*$") ~= nil
    or h:match("^fe[89ab]%x?:") ~= nil or h:match("^ff%x%x?:") ~= nil
end

-- ipv6 reports whether h (no brackets) is an IPv6 address in text: hex
-- groups of 1-4 digits, eight of them, or fewer with one "::".
local function ipv6(h)
  if h:find(":::", 1, true) or h:match("^:[^:]") or h:match("[^:]:$") then
    return false
  end
  local _, double = h:gsub("::", "")
  local groups = 0
  for g in h:gmatch("[^:]+") do
    if not g:match("^%x%x?%x?%x?$") then
      return false
    end
    groups = groups + 1
  end
  if double == 0 then
    return groups == 8
  end
  return double == 1 and groups <= 7
end

-- instance parses one "IP:PORT" line: the host (without brackets) and the
-- port, or nil and why not.
local function instance(line)
  local host, port = line:match("^(%d+%.%d+%.%d+%.%d+):(%d+)$")
  local special
  if host then
    local i, first, second = 0, 0, 0
    for octet in host:gmatch("%d+") do
      local v = tonumber(octet)
      if v > 255 or (#octet > 1 and octet:sub(1, 1) == "0") then
        return nil, "bad instance line: " .. line
      end
      i = i + 1
      if i == 1 then first = v elseif i == 2 then second = v end
    end
    special = special4(first, second)
  else
    host, port = line:match("^%[([%x:%.]+)%]:(%d+)$")
    if not host or (not host:find(".", 1, true) and not ipv6(host)) then
      return nil, "bad instance line: " .. line
    end
    host = host:lower()
    special = special6(host)
  end
  if port:sub(1, 1) == "0" or tonumber(port) > 65535 then
    return nil, "bad instance line: " .. line
  end
  if special then
    return nil, "not an instance's address: " .. line
  end
  return host, tonumber(port)
end

-- parse reads a list: a version line, then one instance per line. A line
-- that breaks the rule is skipped and counted, never the whole list. It
-- fills hosts and ports (when given) and returns the number of
-- instances (or nil and what is wrong when there is no version line), the
-- version, how many lines it skipped and why the first was.
local function parse(text, hosts, ports)
  local version, rest = text:match("^(%d+)\n(.*)$")
  if not version then
    return nil, "first line must be the version"
  end
  local n, skipped, why = 0, 0, nil
  for line in rest:gmatch("[^\n]+") do
    local host, port = instance(line)
    if host then
      n = n + 1
      if hosts then
        hosts[n], ports[n] = host, port
      end
    else
      skipped = skipped + 1
      why = why or port
    end
  end
  -- The version stays a string: it may not fit a Lua number exactly.
  return n, nil, version, skipped, why
end

-- statefile is <name>.backends beside this file, where the registrar
-- writes it ($deployctl_state_file overrides).
local function statefile()
  local conf = ngx.var.deployctl_state_file
  if conf and conf ~= "" then
    return conf
  end
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
  return dir and (dir .. "/" .. name .. ".backends")
end

-- current returns how many instances this worker balances over,
-- re-parsing its list when it changed.
local function current()
  local text = dict:get("list")
  if text == nil then
    -- A new nginx: start from the last list the registrar wrote.
    local path = statefile()
    local f = path and io.open(path, "r")
    if f then
      local t = f:read("*a")
      f:close()
      if parse(t) then
        dict:add("list", t)
        text = dict:get("list")
      end
    end
  end
  if text ~= s.text then
    local n = parse(text or "0\n", s.hosts, s.ports) or 0
    for i = n + 1, s.n do
      s.hosts[i], s.ports[i] = nil, nil
    end
    s.n, s.text = n, text
    for i in pairs(s.down) do
      s.down[i] = nil
    end
  end
  return s.n
end

-- served_version is the version of the list served, kept beside it so
-- that reading it does not copy a long list out of the dict.
local function served_version()
  local v = dict:get("version")
  if v then
    return v
  end
  local text = dict:get("list") -- a list loaded from the state file
  return text and text:match("^(%d+)") or "0"
end

-- failTimeout is how long an instance that failed a connection is skipped.
local failTimeout = 2

local phase = ngx.get_phase()
if phase == "balancer" then
  local balancer = require "ngx.balancer"
  local n = current()
  if n == 0 then
    return ngx.exit(503)
  end
  local ctx = ngx.ctx
  if balancer.get_last_failure() then
    -- The instance just tried did not answer (refused, or no connection
    -- within proxy_connect_timeout: a dead node): skipped by this worker
    -- for failTimeout while the request moves on to the next one.
    if ctx.deployctl_peer then
      s.down[ctx.deployctl_peer] = ngx.now() + failTimeout
    end
  else
    local tries = math.min(n, 3) - 1
    if tries > 0 then
      balancer.set_more_tries(tries)
    end
  end
  -- Round robin over the instances not marked down (all of them when every
  -- one is).
  local now = ngx.now()
  for _ = 1, n do
    s.rr = s.rr % n + 1
    local d = s.down[s.rr]
    if not d or d <= now then
      break
    end
  end
  ctx.deployctl_peer = s.rr
  local ok, err = balancer.set_current_peer(s.hosts[s.rr], s.ports[s.rr])
  if not ok then
    ngx.log(ngx.ERR, "deployctl: set_current_peer ", s.hosts[s.rr], ": ", err)
    return ngx.exit(502)
  end
elseif phase == "access" then
  if current() == 0 then
    return ngx.exit(503)
  end
elseif phase == "content" then
  if ngx.req.get_method() == "GET" then
    ngx.say(served_version())
    return
  end
  if ngx.req.get_method() ~= "POST" then
    return ngx.exit(405)
  end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    ngx.status = 400
    ngx.say("empty body, or larger than client_body_buffer_size")
    return ngx.exit(400)
  end
  local n, err, version, skipped, why = parse(body)
  if not n then
    ngx.status = 400
    ngx.say(err)
    return ngx.exit(400)
  end
  -- Versions only grow: a list older than the one served (a stale or
  -- replayed push) is refused, with the version served.
  local served = served_version()
  if #version < #served or (#version == #served and version < served) then
    ngx.status = 409
    ngx.say("version ", version, " is older than the served ", served)
    return ngx.exit(409)
  end
  local ok, serr = dict:set("list", body)
  if not ok then
    ngx.status = 507
    ngx.say("shared dict: ", serr)
    return ngx.exit(507)
  end
  dict:set("version", version)
  if skipped > 0 then
    ngx.log(ngx.WARN, "deployctl: ", name, ": skipped ", skipped, " line(s) of list ", version, ", first: ", why)
    ngx.say(version, " ", n, " skipped ", skipped, " ", why)
    return
  end
  ngx.say(version, " ", n)
end
