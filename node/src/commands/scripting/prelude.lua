-- Builds the sandbox of a script VM. Runs once per VM, before the
-- dangerous parts of the base library are removed; everything it needs is
-- kept in locals. Its chunk name is "=redis": error locations skip it.
local natives, version, version_num = ...

local G = _G
local type, tostring, error, setmetatable, select, xpcall, pairs =
      type, tostring, error, setmetatable, select, xpcall, pairs
local rawset_real, getfenv_real, setfenv_real, loadstring_real = rawset, getfenv, setfenv, loadstring
local concat = table.concat

-- Tables scripts may read but not change (rawset refuses them too).
local protected = setmetatable({}, {__mode = 'k'})

local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end

-- The metatables getmetatable shows (read-only) for protected tables: only
-- the globals have one in Redis 7; the library tables show none.
local meta_of = setmetatable({}, {__mode = 'k'})

local function readonly(t)
  local p = setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = false})
  protected[p] = true
  return p
end

-- Redis 7 makes the global table read-only: creating a global is an
-- attempt to modify it.
local function create_global_error()
  error('Attempt to modify a readonly table', 2)
end

local function missing_global_error(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end

local function raise(msg)
  error({err = msg}, 0)
end

-- The redis table scripts see.
local err_handler = natives.err_handler
local redis = {}
-- C functions: run the command; `call` raises a failed command's error
-- table, `pcall` returns it.
redis.call = natives.call
redis.pcall = natives.pcall
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if e:sub(1, 1) == '-' then e = e:sub(2) end
  if not e:find(' ', 1, true) then e = 'ERR ' .. e end
  return {err = (e:gsub('[\r\n]+$', ''))}
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {ok = s}
end
redis.sha1hex = function(...)
  if select('#', ...) ~= 1 then raise('ERR wrong number of arguments') end
  return natives.sha1hex(tostring((...)))
end
local function log(...)
  local n = select('#', ...)
  if n < 2 then raise('ERR redis.log() requires two arguments or more.') end
  local level = ...
  if type(level) ~= 'number' then raise('ERR First argument must be a number (log level).') end
  if level < 0 or level > 3 then raise('ERR Invalid debug level.') end
  local parts = {}
  for i = 2, n do
    local v = select(i, ...)
    local t = type(v)
    if t == 'string' or t == 'number' then parts[#parts + 1] = tostring(v) end
  end
  natives.log(level, concat(parts, ' '))
end
redis.log = log
local function setresp(...)
  if select('#', ...) ~= 1 then raise('ERR redis.setresp() requires one argument.') end
  local v = ...
  if v ~= 2 and v ~= 3 then raise('ERR RESP version must be 2 or 3.') end
  natives.setresp(v)
end
redis.setresp = setresp
redis.set_repl = function(...)
  if select('#', ...) ~= 1 then raise('ERR redis.set_repl() requires one argument.') end
  local f = ...
  if type(f) ~= 'number' or f < 0 or f > 3 or f % 1 ~= 0 then
    raise('ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
  local n = select('#', ...)
  if n < 1 then raise('ERR Please specify at least one argument for this redis lib call') end
  local argv = {...}
  for i = 1, n do
    local a = argv[i]
    if type(a) ~= 'string' and type(a) ~= 'number' then
      raise('ERR Lua redis lib command arguments must be strings or integers')
    end
    argv[i] = tostring(a)
  end
  local allowed = natives.acl_check(unpack(argv, 1, n))
  if allowed == nil then
    raise('ERR Invalid command passed to redis.acl_check_cmd()')
  end
  return allowed
end
-- Lua-implemented API functions go through a C trampoline: a script's
-- `return redis.sha1hex(x)` is then not a tail call that would hide the
-- script's frame from error locations.
for _, name in ipairs({'error_reply', 'status_reply', 'sha1hex', 'log', 'setresp', 'set_repl', 'acl_check_cmd'}) do
  redis[name] = natives.wrap(redis[name])
end
local constants = {
  REPL_NONE = 0, REPL_AOF = 1, REPL_SLAVE = 2, REPL_REPLICA = 2, REPL_ALL = 3,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = version, REDIS_VERSION_NUM = version_num,
}
for k, v in pairs(constants) do redis[k] = v end

-- While a function library loads, `redis` offers registration and logging
-- only; data access comes with the runtime table afterwards.
local load_redis = {
  register_function = natives.wrap(function(...)
    local n = select('#', ...)
    local name, callback, flags, description
    if n == 1 then
      local args = ...
      if type(args) ~= 'table' then
        raise('ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
      end
      for k, v in pairs(args) do
        if type(k) ~= 'string' then
          raise('ERR named argument key given to redis.register_function is not a string')
        elseif k == 'function_name' then name = v
        elseif k == 'callback' then callback = v
        elseif k == 'flags' then flags = v
        elseif k == 'description' then description = v
        else raise('ERR unknown argument given to redis.register_function') end
      end
      if name == nil then raise('ERR redis.register_function must get a function name argument') end
      if callback == nil then raise('ERR redis.register_function must get a callback argument') end
      if type(name) == 'number' then name = tostring(name) end
      if type(name) ~= 'string' then raise('ERR function_name argument given to redis.register_function must be a string') end
      if type(callback) ~= 'function' then raise('ERR callback argument given to redis.register_function must be a function') end
    elseif n == 2 then
      name, callback = ...
      if type(name) == 'number' then name = tostring(name) end
      if type(name) ~= 'string' then raise('ERR first argument to redis.register_function must be a string') end
      if type(callback) ~= 'function' then raise('ERR second argument to redis.register_function must be a function') end
    else
      raise('ERR wrong number of arguments to redis.register_function')
    end
    if description ~= nil and type(description) ~= 'string' then
      raise('ERR description argument given to redis.register_function must be a string')
    end
    local flag_list = {}
    if flags ~= nil then
      if type(flags) ~= 'table' then
        raise('ERR flags argument to redis.register_function must be a table representing function flags')
      end
      for _, f in pairs(flags) do
        if type(f) ~= 'string' then raise('ERR unknown flag given') end
        flag_list[#flag_list + 1] = f
      end
    end
    local e = natives.register(name, callback, flag_list, description)
    if e then raise(e) end
  end),
  log = redis.log,
}
for k, v in pairs(constants) do load_redis[k] = v end

-- The global table: library tables become read-only views; functions that
-- reach outside the sandbox or change environments are gone.
for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'bit', 'cjson', 'cmsgpack', 'struct'}) do
  if G[name] ~= nil then rawset_real(G, name, readonly(G[name])) end
end
rawset_real(G, 'redis', readonly(redis))
-- newproxy is gone too: its userdata can carry __gc finalizers, Lua code
-- that would run at arbitrary points (in the middle of redis.call).
for _, name in ipairs({'print', 'loadfile', 'dofile', 'load', 'setfenv', 'module', 'require', 'package', 'os', 'io', 'debug', 'newproxy'}) do
  rawset_real(G, name, nil)
end

-- Scripts run with E as their environment: reads fall through to G, new
-- globals are refused. KEYS and ARGV are set into E for each run.
local E = setmetatable({}, {__index = G, __newindex = create_global_error, __metatable = false})
protected[E] = true
protected[G] = true
rawset_real(G, '_G', E)

rawset_real(G, 'rawset', function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 2) end
  return rawset_real(t, k, v)
end)
rawset_real(G, 'getfenv', function(f)
  if f == nil then f = 1 end
  if type(f) == 'number' and f > 0 then f = f + 1 end
  local env = getfenv_real(f)
  if env == G then return E end
  return env
end)
rawset_real(G, 'loadstring', function(s, name)
  -- Precompiled bytecode can break out of the VM: text only.
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'attempt to load a binary chunk'
  end
  local f, e = loadstring_real(s, name)
  if f then setfenv_real(f, getfenv_real(2)) end
  return f, e
end)
-- Changing a protected table's metatable is an attempt to modify it (an
-- error without a position, as Redis's C check gives); the globals'
-- metatable is shown read-only.
local getmetatable_real = getmetatable
rawset_real(G, 'setmetatable', function(t, mt)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return setmetatable(t, mt)
end)
-- The view holds no table a script could change: the globals show as the
-- scripts' environment, other tables as read-only views.
rawset_real(G, 'getmetatable', function(t)
  if not protected[t] then return getmetatable_real(t) end
  local mt = meta_of[t]
  if not mt then return nil end
  local shown = {}
  for k, v in pairs(mt) do
    if v == G then v = E elseif type(v) == 'table' then v = readonly(v) end
    shown[k] = v
  end
  return readonly(shown)
end)
local string_mt = getmetatable('')
string_mt.__metatable = false
local G_mt = {__index = missing_global_error, __newindex = create_global_error, __metatable = false}
meta_of[G] = G_mt
meta_of[E] = G_mt
setmetatable(G, G_mt)

-- Runs f(a, b) and returns true plus its first result, or false plus an
-- error table {err=, source=, line=}. Without arguments (EVAL scripts read
-- KEYS and ARGV from their environment) no closure is needed.
local function run(f, a, b)
  if a == nil then return xpcall(f, err_handler) end
  return xpcall(function() return f(a, b) end, err_handler)
end

-- A fresh environment for a function library: while it loads it sees
-- `load_redis` and no other global (not even the standard libraries, as in
-- Redis 7.0); once `finish` is called, the runtime `redis` and G.
local redis_view = G.redis
setmetatable(load_redis, {__index = missing_global_error})
local load_view = setmetatable({}, {
  __index = load_redis,
  __newindex = readonly_error,
  __metatable = false,
})
protected[load_view] = true
local function library_env()
  local layer_mt = {__index = missing_global_error, __newindex = create_global_error, __metatable = false}
  local layer = setmetatable({redis = load_view}, layer_mt)
  local env = setmetatable({}, {__index = layer, __newindex = create_global_error, __metatable = false})
  protected[layer] = true
  protected[env] = true
  return env, function()
    rawset_real(layer, 'redis', redis_view)
    rawset_real(layer_mt, '__index', G)
  end
end

return run, E, library_env
