--- :checkhealth ai_ide — server found, its version, the REST sidecar, the models.
local config = require('ai_ide.config')

local M = {}

local health = vim.health

local STATUS_COMMAND = 'ai-ide.showStatus'

--- Starts the server once (without its sidecar), initializes it and asks for
--- the model status, for when no ai_ide client is running.
---@param cmd string[]
---@param settings table
---@param timeout_ms integer
---@return { server_info: table?, capabilities: table?, status: table?, error: string? }
local function probe(cmd, settings, timeout_ms)
  local outcome = {}
  local finished = false
  local ok, rpc = pcall(vim.lsp.rpc.start, config.probe_cmd(cmd), {
    notification = function() end,
    server_request = function()
      return vim.NIL, nil
    end,
    on_exit = function(code)
      if not finished and code ~= 0 then
        outcome.error = ('the server exited with code %d (see :LspLog)'):format(code)
      end
      finished = true
    end,
  })
  if not ok then
    return { error = tostring(rpc) }
  end
  local function stop()
    finished = true
    rpc.request('shutdown', vim.NIL, function()
      rpc.notify('exit', vim.NIL)
    end)
    vim.defer_fn(function()
      if not rpc.is_closing() then
        rpc.terminate()
      end
    end, 2000)
  end
  rpc.request('initialize', {
    processId = vim.uv.os_getpid(),
    rootUri = vim.NIL,
    capabilities = {},
    initializationOptions = settings,
    clientInfo = { name = 'Neovim :checkhealth ai_ide' },
  }, function(err, result)
    if err or type(result) ~= 'table' then
      outcome.error = 'initialize failed: ' .. (err and err.message or 'no result')
      stop()
      return
    end
    outcome.server_info = result.serverInfo
    outcome.capabilities = result.capabilities
    rpc.notify('initialized', vim.empty_dict())
    local provider = result.capabilities and result.capabilities.executeCommandProvider
    if not (provider and vim.list_contains(provider.commands or {}, STATUS_COMMAND)) then
      stop()
      return
    end
    rpc.request(
      'workspace/executeCommand',
      { command = STATUS_COMMAND, arguments = { { quiet = true } } },
      function(status_err, status)
        if status_err then
          outcome.status_error = status_err.message
        else
          outcome.status = status
        end
        stop()
      end
    )
  end)
  if not vim.wait(timeout_ms, function()
    return finished
  end, 50) then
    outcome.error = ('no answer within %d ms'):format(timeout_ms)
    rpc.terminate()
  end
  return outcome
end

--- GET http://127.0.0.1:{port}/v1/ai/health over a plain TCP socket (no curl
--- needed). Returns the HTTP status code, or nil and why not.
---@param port integer
---@param timeout_ms integer
---@return integer? status, string? problem
function M.http_status(port, timeout_ms)
  local tcp = assert(vim.uv.new_tcp())
  local response, problem, done = '', nil, false
  local function close(why)
    problem = problem or why
    done = true
    if not tcp:is_closing() then
      tcp:close()
    end
  end
  tcp:connect('127.0.0.1', port, function(err)
    if err then
      return close(err)
    end
    tcp:write(
      'GET /v1/ai/health HTTP/1.1\r\nHost: 127.0.0.1:'
        .. port
        .. '\r\nAccept: application/json\r\nConnection: close\r\n\r\n'
    )
    tcp:read_start(function(read_err, chunk)
      if read_err then
        return close(read_err)
      end
      if chunk then
        response = response .. chunk
      end
      -- The status line is all that is needed.
      if not chunk or response:find('\r\n', 1, true) then
        close(nil)
      end
    end)
  end)
  if not vim.wait(timeout_ms, function()
    return done
  end, 20) then
    close('no answer within ' .. timeout_ms .. ' ms')
  end
  local code = tonumber(response:match('^HTTP/%d[%.%d]* (%d%d%d)'))
  if code then
    return code, nil
  end
  return nil, problem or 'not an HTTP answer'
end

--- Asks a running client for the model status, quietly: without the popup
--- (window/showMessage) the server would send while checkhealth draws.
---@param client vim.lsp.Client
local function running_status(client)
  local provider = client.server_capabilities and client.server_capabilities.executeCommandProvider
  if not (provider and vim.list_contains(provider.commands or {}, STATUS_COMMAND)) then
    return nil, nil
  end
  local response, err = client:request_sync(
    'workspace/executeCommand',
    { command = STATUS_COMMAND, arguments = { { quiet = true } } },
    10000
  )
  if not response then
    return nil, err or 'no answer'
  end
  if response.err then
    return nil, response.err.message
  end
  return response.result, nil
end

local function report_models(status, problem, supported)
  health.start('ai-ide: models')
  if not supported then
    health.warn('the server does not offer ' .. STATUS_COMMAND .. ' (an older server?)')
    return
  end
  if problem then
    health.error(STATUS_COMMAND .. ' failed: ' .. problem)
    return
  end
  if type(status) ~= 'table' or type(status.models) ~= 'table' or #status.models == 0 then
    health.warn('the server reports no models (check its catalog: `ai-ide models list`)')
    return
  end
  require('ai_ide').update_from_status(status)
  for _, model in ipairs(status.models) do
    local id = tostring(model.id)
    local memory = type(model.memory_usage_mb) == 'number' and model.memory_usage_mb > 0
        and (' (%.0f MB)'):format(model.memory_usage_mb)
      or ''
    if model.status == 'loaded' then
      health.ok(('%s: loaded%s'):format(id, memory))
    elseif model.status == 'error' then
      health.warn(('%s: error: %s'):format(id, tostring(model.error or 'unknown')))
    elseif model.status == 'loading' then
      health.info(('%s: loading (%d%%)'):format(id, math.floor((tonumber(model.load_progress) or 0) * 100)))
    else
      health.info(('%s: %s (loads on the first completion)'):format(id, tostring(model.status)))
    end
  end
end

function M.check()
  local ai_ide = require('ai_ide')
  health.start('ai-ide: Neovim')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is needed (vim.lsp.config, vim.lsp.enable)')
  end
  if vim.fn.has('nvim-0.12') == 1 then
    health.ok('Neovim 0.12: ghost-text suggestions')
  else
    health.warn('ghost-text suggestions need Neovim 0.12; completion items are used instead')
  end

  local options = ai_ide.state.options
  if options then
    health.ok('setup() was called')
  else
    health.warn("require('ai_ide').setup() was not called; checking with the default options")
    options = config.resolve({})
  end

  health.start('ai-ide: server')
  local client = ai_ide.client(0)
  local cmd = client and client.config.cmd or config.server_cmd(options)
  if type(cmd) ~= 'table' then
    health.info('the server is started by a function (cmd is not a command line)')
    return
  end
  local program = vim.fn.exepath(cmd[1])
  if program == '' then
    health.error(
      ('server not found: %s is not executable'):format(cmd[1]),
      { 'install ai-ide (see the README) or set `cmd` in setup() to its path' }
    )
    return
  end
  health.ok(('server found: %s'):format(program))
  health.info('command: ' .. table.concat(cmd, ' '))

  local status, status_problem, supported
  if client then
    local info = client.server_info or {}
    health.ok(('version: %s %s (running, client id %d)'):format(
      tostring(info.name or '?'),
      tostring(info.version or '?'),
      client.id
    ))
    local provider = client.server_capabilities and client.server_capabilities.executeCommandProvider
    supported = provider ~= nil and vim.list_contains(provider.commands or {}, STATUS_COMMAND)
    status, status_problem = running_status(client)
  else
    local outcome = probe(cmd, config.server_settings(options), 30000)
    if outcome.error and not outcome.server_info then
      health.error('the server did not start: ' .. outcome.error)
      return
    end
    local info = outcome.server_info or {}
    health.ok(('version: %s %s (started for this check; not running for any buffer)'):format(
      tostring(info.name or '?'),
      tostring(info.version or '?')
    ))
    local provider = outcome.capabilities and outcome.capabilities.executeCommandProvider
    supported = provider ~= nil and vim.list_contains(provider.commands or {}, STATUS_COMMAND)
    status, status_problem = outcome.status, outcome.status_error
  end

  health.start('ai-ide: REST sidecar')
  local port = config.sidecar_port(cmd, options.sidecar.port)
  if not port then
    health.info('disabled (--no-http)')
  elseif not client then
    health.info(('port %d: the sidecar runs with the language server, which is not running'):format(port))
  else
    local code, problem = M.http_status(port, 3000)
    local url = ('http://127.0.0.1:%d/v1/ai/health'):format(port)
    if code == 200 then
      health.ok('reachable: ' .. url)
    elseif code == 401 or code == 403 then
      health.ok(('reachable (auth required): %s answered %d'):format(url, code))
    elseif code then
      health.warn(('reachable, but %s answered %d'):format(url, code))
    else
      health.warn(('not reachable: %s (%s)'):format(url, problem or '?'), {
        'another process may hold the port: set sidecar.port in setup()',
        'or turn the sidecar off: sidecar = { enabled = false }',
      })
    end
  end

  report_models(status, status_problem, supported)
end

return M
