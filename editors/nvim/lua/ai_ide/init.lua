--- ai_ide: Neovim client of the `ai-ide lsp` language server.
---
--- A thin plugin: it defines and enables the `ai_ide` LSP config
--- (vim.lsp.config/vim.lsp.enable), shows ghost-text suggestions in the
--- buffers the server attaches to (ai_ide.inline), maps keys to accept, cycle
--- and dismiss them, and adds user commands for the server's commands. When
--- the server stops on its own it says so and starts it again after a growing
--- delay; every open buffer is then sent afresh. Edits are applied only to the
--- buffer version they were computed for. Nothing is registered until setup().
local config = require('ai_ide.config')
local inline = require('ai_ide.inline')

local M = {}

--- The LSP config name (vim.lsp.config / vim.lsp.enable / :checkhealth vim.lsp).
M.name = 'ai_ide'

M.notification = 'ai-ide/modelStatus'

---@class ai_ide.ModelStatus
---@field model_id string
---@field status 'available'|'loading'|'loaded'|'unloading'|'error'
---@field progress number 0..1
---@field error? string

--- Plugin state: options in force, the latest model states from the server,
--- the server's state ('starting', 'running', 'restarting', 'stopped') and
--- whether a completion is taking long (the server's "thinking" progress) and
--- whether the last stop was one the user did not ask for.
---@type { options: ai_ide.Options?, models: table<string, ai_ide.ModelStatus>, server: string, thinking: boolean, crashed: boolean }
M.state = { options = nil, models = {}, server = 'stopped', thinking = false, crashed = false }

--- Automatic restarts: at once, then after delays doubling from 1 s up to
--- 16 s; after more than `max_crashes` stops within `window_ms` the server is
--- left stopped until :AiIdeRestart.
M.restart_policy = { first_delay_ms = 1000, max_delay_ms = 16000, max_crashes = 5, window_ms = 180000 }

---@type { crashes: integer[], stopping: boolean }
local restarts = { crashes = {}, stopping = false }

--- Progress tokens of the server's "thinking" report start with this.
local THINKING_TOKEN = 'ai-ide-thinking-'

local augroup = vim.api.nvim_create_augroup('ai_ide', { clear = true })

--- The running ai_ide client: the one attached to {bufnr} if any, else any.
---@param bufnr integer?
---@return vim.lsp.Client?
function M.client(bufnr)
  local attached = vim.lsp.get_clients({ name = M.name, bufnr = bufnr or 0 })
  if attached[1] then
    return attached[1]
  end
  return vim.lsp.get_clients({ name = M.name })[1]
end

local model_states =
  { available = true, loading = true, loaded = true, unloading = true, error = true }

--- Handles `ai-ide/modelStatus`: keeps the state, redraws the statusline and
--- fires `User AiIdeModelStatus` (data: the params) for other plugins.
---@param params ai_ide.ModelStatus
local function on_model_status(_, params)
  if type(params) ~= 'table' or type(params.model_id) ~= 'string' then
    return
  end
  if not model_states[params.status] then
    return
  end
  M.state.models[params.model_id] = {
    model_id = params.model_id,
    status = params.status,
    progress = math.min(1, math.max(0, tonumber(params.progress) or 0)),
    error = type(params.error) == 'string' and params.error or nil,
  }
  vim.api.nvim_exec_autocmds('User', { pattern = 'AiIdeModelStatus', data = params })
  vim.cmd.redrawstatus({ bang = true })
end

--- Reads an `ai-ide.showStatus` result into the model states.
---@param result table?
function M.update_from_status(result)
  if type(result) ~= 'table' or type(result.models) ~= 'table' then
    return
  end
  for _, model in ipairs(result.models) do
    if type(model) == 'table' and type(model.id) == 'string' and model_states[model.status] then
      M.state.models[model.id] = {
        model_id = model.id,
        status = model.status,
        progress = tonumber(model.load_progress) or (model.status == 'loaded' and 1 or 0),
        error = type(model.error) == 'string' and model.error or nil,
      }
    end
  end
end

--- A short text for 'statusline' or 'winbar': the model being loaded, else the
--- configured or last reported model, with its state; '' before any report.
---@return string
function M.statusline()
  if M.state.server == 'restarting' then
    return 'ai-ide: restarting…'
  elseif M.state.server == 'stopped' and M.state.crashed then
    return 'ai-ide: stopped'
  end
  if M.state.thinking then
    return 'ai-ide: thinking…'
  end
  local focus
  for _, model in pairs(M.state.models) do
    if model.status == 'loading' or model.status == 'unloading' then
      focus = model
      break
    end
  end
  local configured = M.state.options and M.state.options.model
  focus = focus or (configured and M.state.models[configured])
  if not focus then
    for _, model in pairs(M.state.models) do
      if model.status == 'loaded' or not focus then
        focus = model
      end
    end
  end
  if not focus then
    return ''
  end
  if focus.status == 'loading' then
    return ('ai-ide: %s %d%%'):format(focus.model_id, math.floor(focus.progress * 100 + 0.5))
  end
  return ('ai-ide: %s %s'):format(focus.model_id, focus.status)
end

local function map_keys(bufnr, keymaps)
  if not keymaps then
    return
  end
  local function map(lhs, rhs, desc, expr)
    if lhs then
      vim.keymap.set('i', lhs, rhs, { buffer = bufnr, expr = expr, desc = 'ai-ide: ' .. desc })
    end
  end
  map(keymaps.accept, function()
    return inline.accept_keys(keymaps.accept)
  end, 'accept the suggestion', true)
  map(keymaps.next, function()
    inline.select(1)
  end, 'next suggestion')
  map(keymaps.prev, function()
    inline.select(-1)
  end, 'previous suggestion')
  map(keymaps.dismiss, function()
    return inline.dismiss_keys(keymaps.dismiss)
  end, 'dismiss the suggestion', true)
end

---@param client vim.lsp.Client
---@param bufnr integer
local function on_attach(client, bufnr)
  local options = assert(M.state.options)
  M.state.server = 'running'
  if options.inline_completion and vim.fn.has('nvim-0.12') == 1 then
    inline.attach(bufnr, client.id)
    map_keys(bufnr, options.keymaps)
  elseif vim.lsp.completion then
    -- Neovim 0.11 has no inline completion: offer the server's completion items.
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = false })
  end
end

--- A message on one line that fits the command line, so that it never turns
--- into a "Press ENTER" prompt that swallows the next key.
---@param message string
---@param level integer?
function M.notify(message, level)
  message = vim.trim((message:gsub('%s*\n%s*', ' ')))
  local room = math.max(20, vim.v.echospace - 1)
  if vim.fn.strdisplaywidth(message) > room then
    message = vim.fn.strcharpart(message, 0, room - 1) .. '…'
  end
  vim.notify(message, level or vim.log.levels.INFO)
end

local show_message_levels = {
  [1] = vim.log.levels.ERROR,
  [2] = vim.log.levels.WARN,
  [3] = vim.log.levels.INFO,
  [4] = vim.log.levels.DEBUG,
}

--- window/showMessage: the server's messages already start with "ai-ide:".
local function on_show_message(_, params)
  if type(params) == 'table' and type(params.message) == 'string' then
    M.notify(params.message, show_message_levels[params.type] or vim.log.levels.INFO)
  end
  return vim.NIL
end

--- Why a workspace edit cannot be applied, or nil: every document edit must
--- name the version of a loaded buffer as it is now.
---@param edit table lsp.WorkspaceEdit
---@return string?
function M.stale_edit(edit)
  if type(edit) ~= 'table' then
    return 'not a workspace edit'
  end
  for _, change in ipairs(edit.documentChanges or {}) do
    local document = change.textDocument
    if type(document) == 'table' and type(document.uri) == 'string' then
      local version = document.version
      if type(version) == 'number' then
        local bufnr = vim.uri_to_bufnr(document.uri)
        local current = vim.api.nvim_buf_is_loaded(bufnr) and vim.lsp.util.buf_versions[bufnr]
        if current ~= version then
          return 'the file changed while it was computed'
        end
      end
    end
  end
  return nil
end

--- workspace/applyEdit, version-checked (Neovim's own handler applies nothing
--- for a newer buffer yet answers "applied"): a stale edit is refused, and the
--- server tells the user. A Visual selection the action was run on is ended.
local function on_apply_edit(_, params, ctx)
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client or type(params) ~= 'table' then
    return { applied = false, failureReason = 'unknown client' }
  end
  -- The action the selection was made for is done, applied or not.
  if vim.api.nvim_get_mode().mode:match('^[vVsS\22\19]') then
    vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<Esc>', true, false, true), 'n', false)
  end
  local problem = M.stale_edit(params.edit)
  if problem then
    return { applied = false, failureReason = problem }
  end
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, params.edit, client.offset_encoding)
  if not ok then
    return { applied = false, failureReason = tostring(err) }
  end
  return { applied = true }
end

--- Starts the server for every loaded buffer it serves: each is attached and
--- sent in full (didOpen), so the new process has the text as it is now.
---
--- The client is created and attached at once, even when the restart waits
--- {delay_ms}: the wait happens in the new process (`sleep`, then the server).
--- A buffer left without any client for a moment loses Neovim's change
--- tracking for good (its on_lines callback detaches on the first change and
--- is never attached again), and every later server would keep a frozen copy.
---@param delay_ms integer
local function start_all(delay_ms)
  local options = M.state.options
  if not options then
    return
  end
  local base = vim.lsp.config[M.name]
  if not base then
    return
  end
  local config_copy = vim.deepcopy(base)
  local cmd = config.server_cmd(options)
  if delay_ms > 0 then
    cmd = vim.list_extend({ 'sh', '-c', 'sleep "$0" && exec "$@"', ('%.1f'):format(delay_ms / 1000) }, cmd)
  end
  config_copy.cmd = cmd
  local filetypes = config.filetypes(options)
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if
      vim.api.nvim_buf_is_loaded(bufnr)
      and vim.bo[bufnr].buftype == ''
      and vim.list_contains(filetypes, vim.bo[bufnr].filetype)
      and #vim.lsp.get_clients({ bufnr = bufnr, name = M.name, _uninitialized = true }) == 0
    then
      M.state.server = 'starting'
      vim.lsp.start(config_copy, { bufnr = bufnr, _root_markers = options.root_markers })
    end
  end
end

--- Decides what follows a stop the user did not ask for.
local function on_crash(code, signal)
  local policy = M.restart_policy
  local now = vim.uv.now()
  local recent = {}
  for _, at in ipairs(restarts.crashes) do
    if now - at < policy.window_ms then
      table.insert(recent, at)
    end
  end
  table.insert(recent, now)
  restarts.crashes = recent
  local why = signal ~= 0 and ('signal %d'):format(signal) or ('exit code %d'):format(code)
  M.state.crashed = true
  if #recent > policy.max_crashes then
    M.state.server = 'stopped'
    M.notify(
      ('ai-ide: the server stopped %d times (%s); not restarting. :AiIdeRestart, :LspLog'):format(
        #recent,
        why
      ),
      vim.log.levels.WARN
    )
    return
  end
  -- At once the first time, then after 1, 2, 4, 8 s... if it keeps stopping.
  local delay = #recent == 1 and 0
    or math.min(policy.max_delay_ms, policy.first_delay_ms * 2 ^ (#recent - 2))
  M.notify(
    delay == 0 and ('ai-ide: the server stopped (%s); restarting it'):format(why)
      or ('ai-ide: the server stopped (%s); restarting in %d s'):format(why, math.floor(delay / 1000)),
    vim.log.levels.WARN
  )
  start_all(delay)
  M.state.server = 'restarting'
end

local function on_exit(code, signal, client_id)
  -- Asked to stop (client:stop(), :lsp stop) even if it had to be killed in
  -- the end; read now, while the client object still exists.
  local client = vim.lsp.get_client_by_id(client_id)
  local stopping = client ~= nil and client._is_stopping == true
  vim.schedule(function()
    M.state.thinking = false
    for bufnr = 1, vim.fn.bufnr('$') do
      if vim.api.nvim_buf_is_valid(bufnr) then
        inline.detach(bufnr)
      end
    end
    -- Another ai_ide client (another root) may still run: it keeps the state.
    local others = vim.tbl_filter(function(c)
      return c.id ~= client_id and not c:is_stopped()
    end, vim.lsp.get_clients({ name = M.name }))
    if #others == 0 then
      -- A new server process starts with a fresh set of models.
      M.state.models = {}
      M.state.server = 'stopped'
    end
    local asked = stopping or restarts.stopping or vim.v.exiting ~= vim.NIL
    -- A clean exit (code 0, no signal) follows `shutdown`: :lsp stop, :LspStop.
    if not asked and (code ~= 0 or signal ~= 0) then
      on_crash(code, signal)
    end
    pcall(vim.cmd.redrawstatus, { bang = true })
  end)
end

--- :AiIdeRestart: a fresh server process for every buffer, crash count reset.
function M.restart()
  if not M.state.options then
    M.notify('ai-ide: setup() was not called', vim.log.levels.WARN)
    return
  end
  restarts.crashes = {}
  M.state.crashed = false
  local clients = vim.lsp.get_clients({ name = M.name })
  restarts.stopping = true
  for _, client in ipairs(clients) do
    client:stop()
  end
  local stopped = vim.wait(5000, function()
    for _, client in ipairs(clients) do
      if vim.lsp.get_client_by_id(client.id) then
        return false
      end
    end
    return true
  end, 50)
  if not stopped then
    for _, client in ipairs(clients) do
      client:stop(true)
    end
  end
  -- At once, before any key is typed into a buffer without a client (see
  -- start_all); the exit callbacks run scheduled, so `stopping` is reset after them.
  start_all(0)
  vim.schedule(function()
    restarts.stopping = false
  end)
end

local function on_progress(args)
  local data = args.data or {}
  local client = data.client_id and vim.lsp.get_client_by_id(data.client_id)
  local params = data.params or {}
  if not client or client.name ~= M.name or type(params.token) ~= 'string' then
    return
  end
  if vim.startswith(params.token, THINKING_TOKEN) and type(params.value) == 'table' then
    local thinking = params.value.kind ~= 'end'
    if thinking ~= M.state.thinking then
      M.state.thinking = thinking
      pcall(vim.cmd.redrawstatus, { bang = true })
    end
  end
end

--- Configures and enables the `ai_ide` language server. Calling it again
--- replaces the options.
---@param opts table? see `ai_ide.Options`
function M.setup(opts)
  if vim.fn.has('nvim-0.11') == 0 then
    vim.notify('ai-ide: needs Neovim 0.11 or newer (0.12 for inline completion)', vim.log.levels.ERROR)
    return
  end
  local options, problems = config.resolve(opts)
  if #problems > 0 then
    vim.notify(
      'ai-ide: invalid options (defaults used): ' .. table.concat(problems, '; '),
      vim.log.levels.WARN
    )
  end
  M.state.options = options
  local settings = config.server_settings(options)
  vim.lsp.config(M.name, {
    cmd = config.server_cmd(options),
    filetypes = config.filetypes(options),
    root_markers = options.root_markers,
    init_options = settings,
    -- Answers workspace/configuration for the section "aiIde".
    settings = { aiIde = settings },
    handlers = {
      [M.notification] = on_model_status,
      ['workspace/applyEdit'] = on_apply_edit,
      ['window/showMessage'] = on_show_message,
    },
    on_attach = on_attach,
    on_exit = on_exit,
  })
  M.state.server = 'starting'
  vim.lsp.enable(M.name)
  require('ai_ide.commands').register()

  vim.api.nvim_clear_autocmds({ group = augroup })
  vim.api.nvim_create_autocmd('LspDetach', {
    group = augroup,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == M.name then
        -- Only this buffer stops being served (:bd of it); the model states
        -- stay, as the server keeps running for the other buffers.
        inline.detach(args.buf)
      end
    end,
  })
  vim.api.nvim_create_autocmd('LspProgress', { group = augroup, callback = on_progress })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = augroup,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == M.name then
        M.state.server = 'running'
        M.state.crashed = false
        pcall(vim.cmd.redrawstatus, { bang = true })
      end
    end,
  })
end

return M
