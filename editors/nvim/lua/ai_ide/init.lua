--- ai_ide: Neovim client of the `ai-ide lsp` language server.
---
--- A thin plugin: it defines and enables the `ai_ide` LSP config
--- (vim.lsp.config/vim.lsp.enable), turns on vim.lsp.inline_completion in the
--- buffers the server attaches to, maps keys to accept, cycle and dismiss
--- suggestions, and adds user commands for the server's commands. Nothing is
--- registered until setup() is called.
local config = require('ai_ide.config')

local M = {}

--- The LSP config name (vim.lsp.config / vim.lsp.enable / :checkhealth vim.lsp).
M.name = 'ai_ide'

M.notification = 'ai-ide/modelStatus'

---@class ai_ide.ModelStatus
---@field model_id string
---@field status 'available'|'loading'|'loaded'|'unloading'|'error'
---@field progress number 0..1
---@field error? string

--- Plugin state: options in force and the latest model states from the server.
---@type { options: ai_ide.Options?, models: table<string, ai_ide.ModelStatus> }
M.state = { options = nil, models = {} }

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
  local inline = vim.lsp.inline_completion
  local function map(lhs, rhs, desc, expr)
    if lhs then
      vim.keymap.set('i', lhs, rhs, { buffer = bufnr, expr = expr, desc = 'ai-ide: ' .. desc })
    end
  end
  map(keymaps.accept, function()
    if inline.get() then
      return ''
    end
    return keymaps.accept
  end, 'accept the suggestion', true)
  map(keymaps.next, function()
    inline.select({ count = 1 })
  end, 'next suggestion')
  map(keymaps.prev, function()
    inline.select({ count = -1 })
  end, 'previous suggestion')
  map(keymaps.dismiss, function()
    -- get() with an on_accept that does nothing: hides the suggestion and
    -- drops it without inserting, through the public API.
    if inline.get({ on_accept = function() end }) then
      return ''
    end
    return keymaps.dismiss
  end, 'dismiss the suggestion', true)
end

---@param client vim.lsp.Client
---@param bufnr integer
local function on_attach(client, bufnr)
  local options = assert(M.state.options)
  if vim.lsp.inline_completion then
    if options.inline_completion then
      vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
      map_keys(bufnr, options.keymaps)
    end
  elseif vim.lsp.completion then
    -- Neovim 0.11 has no inline completion: offer the server's completion items.
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = false })
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
    handlers = { [M.notification] = on_model_status },
    on_attach = on_attach,
  })
  vim.lsp.enable(M.name)
  require('ai_ide.commands').register()

  vim.api.nvim_clear_autocmds({ group = augroup })
  vim.api.nvim_create_autocmd('LspDetach', {
    group = augroup,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == M.name and #vim.lsp.get_clients({ name = M.name }) <= 1 then
        -- A new server process starts with a fresh set of models.
        M.state.models = {}
      end
    end,
  })
end

return M
