--- User commands for the server's commands (workspace/executeCommand):
--- :AiIdeLoadModel [id], :AiIdeUnloadModel [id], :AiIdeGenerate [prompt],
--- :AiIdeStatus.
local M = {}

M.server_commands = {
  load = 'ai-ide.loadModel',
  unload = 'ai-ide.unloadModel',
  generate = 'ai-ide.generate',
  status = 'ai-ide.showStatus',
}

local function notify(message, level)
  vim.notify('ai-ide: ' .. message, level or vim.log.levels.INFO)
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
      notify('the generated code could not be applied (the buffer changed?)', vim.log.levels.WARN)
    else
      notify('nothing was generated; write a comment above the cursor or give a prompt', vim.log.levels.WARN)
    end
  end)
end

--- Asks the server for the model status. The server shows it itself
--- (window/showMessage); the result also refreshes the statusline state.
function M.status()
  M.execute(M.server_commands.status, {}, function(result)
    require('ai_ide').update_from_status(result)
    vim.cmd.redrawstatus({ bang = true })
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
end

return M
