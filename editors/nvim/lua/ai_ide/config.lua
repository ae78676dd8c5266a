--- Options of the ai_ide plugin and what follows from them: the server's
--- command line, its settings object and the filetypes it serves.
--- Pure functions: nothing here touches editor state.
local M = {}

--- The languages the server has grammars and prompts for (filetypes).
M.default_languages = {
  rust = true,
  python = true,
  typescript = true,
  typescriptreact = true,
  javascript = true,
  go = true,
  java = true,
}

---@class ai_ide.Keymaps
---@field accept string|false Insert mode: accept the suggestion (falls back to the key).
---@field next string|false Insert mode: next suggestion.
---@field prev string|false Insert mode: previous suggestion.
---@field dismiss string|false Insert mode: hide the suggestion (falls back to the key).

---@class ai_ide.Options
---@field cmd string[] Program and arguments that start the language server.
---@field model string? Completion model id; nil: the server's default.
---@field max_tokens integer Most tokens per completion (1-1024).
---@field languages table<string, boolean> Completion on/off per filetype.
---@field sidecar { enabled: boolean, port: integer } The REST sidecar on 127.0.0.1.
---@field keymaps ai_ide.Keymaps|false Buffer-local insert-mode keymaps; false: none.
---@field inline_completion boolean Turn on vim.lsp.inline_completion in attached buffers.
---@field root_markers string[] Files that mark a project root.
M.defaults = {
  cmd = { 'ai-ide', 'lsp' },
  model = nil,
  max_tokens = 64,
  languages = vim.deepcopy(M.default_languages),
  sidecar = { enabled = true, port = 8765 },
  keymaps = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>', dismiss = '<C-]>' },
  inline_completion = true,
  root_markers = { '.git' },
}

local function is_list_of_strings(value)
  if type(value) ~= 'table' or #value == 0 then
    return false
  end
  for _, part in ipairs(value) do
    if type(part) ~= 'string' then
      return false
    end
  end
  return true
end

--- Merges user options over the defaults and validates them.
--- An invalid value keeps its default and adds a line to `problems`.
---@param user table?
---@return ai_ide.Options options, string[] problems
function M.resolve(user)
  user = user or {}
  local problems = {}
  local options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), user)
  -- Lists are replaced, not merged.
  options.cmd = user.cmd ~= nil and user.cmd or vim.deepcopy(M.defaults.cmd)
  options.root_markers = user.root_markers ~= nil and user.root_markers
    or vim.deepcopy(M.defaults.root_markers)
  if user.keymaps == false then
    options.keymaps = false
  end

  local function reject(message, key, fallback)
    table.insert(problems, message)
    options[key] = vim.deepcopy(fallback)
  end

  if type(options.cmd) == 'string' and options.cmd:match('%S') then
    options.cmd = vim.split(vim.trim(options.cmd), '%s+')
  elseif not is_list_of_strings(options.cmd) then
    reject('cmd must be a list of strings: a program and its arguments', 'cmd', M.defaults.cmd)
  end
  if options.model ~= nil and (type(options.model) ~= 'string' or options.model == '') then
    reject('model must be a model id (a non-empty string)', 'model', nil)
  end
  local max_tokens = options.max_tokens
  if
    type(max_tokens) ~= 'number'
    or max_tokens ~= math.floor(max_tokens)
    or max_tokens < 1
    or max_tokens > 1024
  then
    reject('max_tokens must be an integer from 1 to 1024', 'max_tokens', M.defaults.max_tokens)
  end
  if type(options.languages) ~= 'table' then
    reject('languages must map filetypes to true or false', 'languages', M.default_languages)
  else
    for language, enabled in pairs(options.languages) do
      if type(enabled) ~= 'boolean' then
        table.insert(problems, ('languages.%s must be true or false'):format(language))
        options.languages[language] = M.default_languages[language]
      end
    end
  end
  local sidecar = options.sidecar
  if type(sidecar) ~= 'table' then
    reject('sidecar must be a table { enabled, port }', 'sidecar', M.defaults.sidecar)
  else
    if type(sidecar.enabled) ~= 'boolean' then
      table.insert(problems, 'sidecar.enabled must be true or false')
      sidecar.enabled = M.defaults.sidecar.enabled
    end
    local port = sidecar.port
    if type(port) ~= 'number' or port ~= math.floor(port) or port < 1 or port > 65535 then
      table.insert(problems, 'sidecar.port must be a TCP port (1-65535)')
      sidecar.port = M.defaults.sidecar.port
    end
  end
  if options.keymaps ~= false and type(options.keymaps) ~= 'table' then
    reject('keymaps must be a table or false', 'keymaps', M.defaults.keymaps)
  end
  return options, problems
end

--- Whether the command line already chooses the sidecar (`--no-http`, `--http-port`).
---@param args string[]
local function has_sidecar_flag(args)
  for _, arg in ipairs(args) do
    if arg == '--no-http' or arg == '--http-port' or vim.startswith(arg, '--http-port=') then
      return true
    end
  end
  return false
end

--- The command that starts the server: `cmd` plus `--http-port N` or `--no-http`
--- from `sidecar`, unless `cmd` already has one of them.
---@param options ai_ide.Options
---@return string[]
function M.server_cmd(options)
  local cmd = vim.deepcopy(options.cmd)
  if not has_sidecar_flag(cmd) then
    if options.sidecar.enabled then
      vim.list_extend(cmd, { '--http-port', tostring(options.sidecar.port) })
    else
      table.insert(cmd, '--no-http')
    end
  end
  return cmd
end

--- The port the sidecar listens on according to the command line, or nil when off.
---@param cmd string[]
---@param default_port integer the port when the command line does not say
---@return integer?
function M.sidecar_port(cmd, default_port)
  for index, arg in ipairs(cmd) do
    if arg == '--no-http' then
      return nil
    elseif arg == '--http-port' then
      return tonumber(cmd[index + 1])
    elseif vim.startswith(arg, '--http-port=') then
      return tonumber(arg:sub(#'--http-port=' + 1))
    end
  end
  return default_port
end

--- The command line of a short-lived second server (for :checkhealth): the
--- same command without its sidecar, so it cannot take the running one's port.
---@param cmd string[]
---@return string[]
function M.probe_cmd(cmd)
  local probe = {}
  local skip = false
  for _, arg in ipairs(cmd) do
    if skip then
      skip = false
    elseif arg == '--http-port' then
      skip = true
    elseif arg ~= '--no-http' and not vim.startswith(arg, '--http-port=') then
      table.insert(probe, arg)
    end
  end
  table.insert(probe, '--no-http')
  return probe
end

--- The settings object of the server (initializationOptions, section "aiIde").
---@param options ai_ide.Options
function M.server_settings(options)
  local settings = {
    maxTokens = options.max_tokens,
    languages = vim.deepcopy(options.languages),
    sidecar = { enabled = options.sidecar.enabled, port = options.sidecar.port },
    -- Refactorings arrive through workspace/applyEdit, which the plugin
    -- version-checks (and answers, so that the server explains a refusal).
    refactorEditsByCommand = true,
  }
  -- Omitted rather than null: the server keeps its configured default model.
  if options.model then
    settings.model = options.model
  end
  return settings
end

--- Filetypes the client attaches to: every listed language, on or off (the
--- server skips completion for one that is off; code actions and commands stay).
---@param options ai_ide.Options
---@return string[]
function M.filetypes(options)
  local filetypes = vim.tbl_keys(options.languages)
  table.sort(filetypes)
  return filetypes
end

return M
