--- User commands for the server's commands (workspace/executeCommand):
--- :AiIdeLoadModel [id], :AiIdeUnloadModel [id], :AiIdeGenerate [prompt],
--- :AiIdeStatus; and :AiIdeRestart for a fresh server process.
local M = {}

M.server_commands = {
  load = 'ai-ide.loadModel',
  unload = 'ai-ide.unloadModel',
  generate = 'ai-ide.generate',
  status = 'ai-ide.showStatus',
}

local function notify(message, level)
  require('ai_ide').notify('ai-ide: ' .. message, level)
end

--- Runs a server command on the ai_ide client of the current buffer.
---@param command string
---@param arguments any[]
---@param on_result fun(result: any)
function M.execute(command, arguments, on_result)
  local ai_ide = require('ai_ide')
  local bufnr = vim.api.nvim_get_current_buf()
  local client = ai_ide.client(bufnr)
  if not client then
    notify('the language server is not running (open a file of a supported language)', vim.log.levels.WARN)
    return
  end
  local params = { command = command, arguments = arguments }
  client:request('workspace/executeCommand', params, function(err, result)
    if err then
      local message = err.message or vim.inspect(err)
      notify(('%s failed: %s'):format(command, message), vim.log.levels.ERROR)
      return
    end
    on_result(result)
  end, bufnr)
end

--- Argument list for the model commands: `[id]`, or `[]` for the configured model.
---@param id string?
function M.model_arguments(id)
  id = id and vim.trim(id) or ''
  return id ~= '' and { id } or {}
end

function M.load_model(id)
  M.execute(M.server_commands.load, M.model_arguments(id), function(result)
    result = type(result) == 'table' and result or {}
    notify(('%s is %s'):format(tostring(result.model_id or 'model'), tostring(result.status or 'loading')))
  end)
end

function M.unload_model(id)
  -- The server reports the freed memory itself (window/showMessage).
  M.execute(M.server_commands.unload, M.model_arguments(id), function() end)
end

--- Generates code at the cursor from {prompt}, or from the comment above the
--- cursor when {prompt} is empty. The server inserts it (workspace/applyEdit).
---@param prompt string?
function M.generate(prompt)
  local ai_ide = require('ai_ide')
  local client = ai_ide.client(0)
  if not client or not client.attached_buffers[vim.api.nvim_get_current_buf()] then
    notify('this buffer is not attached to the ai-ide server', vim.log.levels.WARN)
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local argument = { uri = params.textDocument.uri, position = params.position }
  if prompt and vim.trim(prompt) ~= '' then
    argument.prompt = vim.trim(prompt)
  end
  notify('generating…')
  M.execute(M.server_commands.generate, { argument }, function(result)
    if type(result) ~= 'table' then
      notify('the server returned no generation result', vim.log.levels.WARN)
    elseif result.applied then
      notify('inserted generated code')
    elseif type(result.text) == 'string' and vim.trim(result.text) ~= '' then
      return -- not applied: the server has said why (window/showMessage)
    else
      notify('nothing was generated; write a comment above the cursor or give a prompt', vim.log.levels.WARN)
    end
  end)
end

--- The status result as lines: the server and backend, then one per model.
---@param result table
---@return string[]
function M.status_lines(result)
  local lines = {
    ('ai-ide (%s, %s):'):format(tostring(result.status or '?'), tostring(result.backend or '?')),
  }
  for _, model in ipairs(type(result.models) == 'table' and result.models or {}) do
    local line = ('  %s: %s'):format(tostring(model.id), tostring(model.status))
    if type(model.memory_usage_mb) == 'number' and model.memory_usage_mb > 0 then
      line = line .. (', %.0f MB'):format(model.memory_usage_mb)
    end
    if type(model.average_inference_time_ms) == 'number' then
      line = line
        .. (', %d requests, avg %.0f ms'):format(model.inference_count or 0, model.average_inference_time_ms)
    end
    table.insert(lines, line)
  end
  return lines
end

--- Shows the model status, one line per model (the user asked for it, so a
--- message of several lines is fine here), and refreshes the statusline. The
--- server is asked not to send its one-line summary (window/showMessage) too.
function M.status()
  M.execute(M.server_commands.status, { { quiet = true } }, function(result)
    if type(result) ~= 'table' then
      return
    end
    require('ai_ide').update_from_status(result)
    vim.cmd.redrawstatus({ bang = true })
    vim.notify(table.concat(M.status_lines(result), '\n'), vim.log.levels.INFO)
  end)
end

local function complete_model(lead)
  local ids = {}
  local ai_ide = require('ai_ide')
  for id in pairs(ai_ide.state.models) do
    if vim.startswith(id, lead) then
      table.insert(ids, id)
    end
  end
  local configured = ai_ide.state.options and ai_ide.state.options.model
  if configured and vim.startswith(configured, lead) and not ai_ide.state.models[configured] then
    table.insert(ids, configured)
  end
  table.sort(ids)
  return ids
end

--- Creates the user commands (idempotent).
function M.register()
  local create = vim.api.nvim_create_user_command
  create('AiIdeLoadModel', function(args)
    M.load_model(args.args)
  end, {
    nargs = '?',
    complete = complete_model,
    desc = 'ai-ide: load a model (default: the configured one)',
  })
  create('AiIdeUnloadModel', function(args)
    M.unload_model(args.args)
  end, {
    nargs = '?',
    complete = complete_model,
    desc = 'ai-ide: unload a model (default: the configured one)',
  })
  create('AiIdeGenerate', function(args)
    M.generate(args.args)
  end, {
    nargs = '*',
    desc = 'ai-ide: generate code after the cursor line from a prompt or the comment above',
  })
  create('AiIdeStatus', function()
    M.status()
  end, { nargs = 0, desc = 'ai-ide: show the model status' })
  create('AiIdeRestart', function()
    require('ai_ide').restart()
  end, { nargs = 0, desc = 'ai-ide: restart the language server (all buffers are sent again)' })
end

return M
