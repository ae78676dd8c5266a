-- Drives a headless Neovim through one scenario of tests/e2e/nvim/test_nvim.py and
-- writes what happened to a JSON file, then quits.
--
-- The test's init file sets vim.g.ai_ide_test, calls require('ai_ide').setup()
-- and then runs this file. Steps run from timers on the main loop once Neovim
-- has started, so keys fed with nvim_feedkeys are typed as a user types them.
local test = vim.g.ai_ide_test
local results = { messages = {}, steps = {} }
local finished = false

-- Keep notifications (they would otherwise wait for "Press ENTER").
vim.notify = function(message, level)
  table.insert(results.messages, { message = tostring(message), level = level })
end

local function finish(err)
  if finished then
    return
  end
  finished = true
  results.error = err
  local file = assert(io.open(test.out, 'w'))
  file:write(vim.json.encode(results))
  file:close()
  vim.cmd('qall!')
end

local function step(name)
  table.insert(results.steps, name)
end

--- Calls {on_ready}(value) once {condition}() returns a truthy value.
local function wait_for(what, condition, on_ready, timeout_ms)
  local deadline = vim.uv.now() + (timeout_ms or test.timeout_ms)
  local timer = assert(vim.uv.new_timer())
  timer:start(
    0,
    50,
    vim.schedule_wrap(function()
      if timer:is_closing() or finished then
        return
      end
      local ok, value = pcall(condition)
      if not ok then
        timer:close()
        finish(what .. ': ' .. tostring(value))
      elseif value then
        timer:close()
        local run_ok, run_err = pcall(on_ready, value)
        if not run_ok then
          finish(what .. ' (next step): ' .. tostring(run_err))
        end
      elseif vim.uv.now() > deadline then
        timer:close()
        finish('timed out waiting for ' .. what)
      end
    end)
  )
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr or 0, 0, -1, true), '\n')
end

local function feed(keys)
  vim.api.nvim_feedkeys(vim.keycode(keys), 'm', false)
end

local function ai_client()
  local client = vim.lsp.get_clients({ bufnr = 0, name = 'ai_ide' })[1]
  if client and client.initialized then
    return client
  end
end

--- The suggestion shown as virtual text, or nil.
local function ghost_text()
  local namespace = vim.api.nvim_get_namespaces()['ai_ide.suggestion']
  if not namespace then
    return nil
  end
  local marks = vim.api.nvim_buf_get_extmarks(0, namespace, 0, -1, { details = true })
  for _, mark in ipairs(marks) do
    local details = mark[4]
    local lines = {}
    local first = {}
    for _, chunk in ipairs(details.virt_text or {}) do
      table.insert(first, chunk[1])
    end
    table.insert(lines, table.concat(first))
    for _, virt_line in ipairs(details.virt_lines or {}) do
      local line = {}
      for _, chunk in ipairs(virt_line) do
        table.insert(line, chunk[1])
      end
      table.insert(lines, table.concat(line))
    end
    return table.concat(lines, '\n')
  end
end

local function record_client(client)
  results.client = {
    name = client.name,
    server_info = client.server_info,
    offset_encoding = client.offset_encoding,
    cmd = client.config.cmd,
    inline_completion = require('ai_ide.inline').attached(vim.api.nvim_get_current_buf()),
    keymap_accept = vim.fn.maparg(test.keys and test.keys.accept or '<Tab>', 'i', false, true).desc,
  }
end

local scenarios = {}

-- Type `A` at the end of the last line, wait for the ghost text, press <Tab>.
function scenarios.inline_completion()
  vim.cmd.edit(vim.fn.fnameescape(test.file))
  wait_for('the ai_ide client to attach', ai_client, function(client)
    step('attached')
    record_client(client)
    results.before = buffer_text()
    vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0), 0 })
    feed('A')
    wait_for('a suggestion as ghost text', ghost_text, function(text)
      step('ghost text')
      results.ghost_text = text
      results.mode_before_accept = vim.api.nvim_get_mode().mode
      feed('<Tab>')
      wait_for('the buffer to change', function()
        return buffer_text() ~= results.before
      end, function()
        step('accepted')
        results.after = buffer_text()
        results.cursor = vim.api.nvim_win_get_cursor(0)
        results.ghost_text_after = ghost_text()
        feed('<Esc>')
        finish(nil)
      end)
    end)
  end)
end

-- Select an expression, list the code actions, apply "Extract variable".
function scenarios.code_action()
  vim.cmd.edit(vim.fn.fnameescape(test.file))
  wait_for('the ai_ide client to attach', ai_client, function(client)
    step('attached')
    record_client(client)
    results.before = buffer_text()
    results.capability = client.server_capabilities.codeActionProvider or vim.NIL
    local range = test.range -- { start = {row, col}, ['end'] = {row, col} }, end inclusive
    local params = vim.lsp.util.make_given_range_params(range.start, range['end'], 0, client.offset_encoding)
    params.context = { diagnostics = {} }
    client:request('textDocument/codeAction', params, function(err, actions)
      results.list_error = err and err.message or nil
      results.titles = {}
      for _, action in ipairs(actions or {}) do
        table.insert(results.titles, action.title)
      end
      step('listed')
      vim.lsp.buf.code_action({
        range = range,
        apply = true,
        filter = function(action)
          return action.title == test.title
        end,
      })
      -- The server explains a refused refactoring (window/showMessage): stop there.
      wait_for('the code action to change the buffer', function()
        if buffer_text() ~= results.before then
          return true
        end
        for _, message in ipairs(results.messages) do
          if message.message:find(test.title, 1, true) then
            return true
          end
        end
      end, function()
        step('applied')
        results.after = buffer_text()
        finish(nil)
      end)
    end, 0)
  end)
end

-- :checkhealth ai_ide, first with no server running, then with one attached.
function scenarios.health()
  local function health_lines()
    vim.cmd('checkhealth ai_ide')
    local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
    vim.cmd('bwipeout!')
    return lines
  end
  results.health_without_client = health_lines()
  step('health without client')
  vim.cmd.edit(vim.fn.fnameescape(test.file))
  wait_for('the ai_ide client to attach', ai_client, function(client)
    step('attached')
    record_client(client)
    results.health_with_client = health_lines()
    step('health with client')
    finish(nil)
  end)
end

-- The user commands: load, status, unload; model status notifications.
function scenarios.commands()
  vim.cmd.edit(vim.fn.fnameescape(test.file))
  local seen = {}
  local unload
  vim.api.nvim_create_autocmd('User', {
    pattern = 'AiIdeModelStatus',
    callback = function(args)
      table.insert(seen, args.data)
    end,
  })
  wait_for('the ai_ide client to attach', ai_client, function(client)
    step('attached')
    record_client(client)
    local provider = client.server_capabilities.executeCommandProvider
    results.commands = provider and provider.commands or vim.NIL
    unload = function()
      vim.cmd('AiIdeUnloadModel ' .. test.model)
      wait_for('the model to unload', function()
        local model = require('ai_ide').state.models[test.model]
        return model and model.status == 'available'
      end, function()
        step('unloaded')
        results.notifications = seen
        finish(nil)
      end)
    end
    vim.cmd('AiIdeLoadModel ' .. test.model)
    wait_for('the model to load', function()
      local model = require('ai_ide').state.models[test.model]
      return model and model.status == 'loaded'
    end, function()
      step('loaded')
      results.statusline_loaded = require('ai_ide').statusline()
      vim.cmd('AiIdeStatus')
      wait_for('the status message', function()
        for _, message in ipairs(results.messages) do
          if message.message:find(test.model, 1, true) and not message.message:find(' is ', 1, true) then
            return true
          end
        end
      end, function()
        step('status')
        local before = buffer_text()
        vim.api.nvim_win_set_cursor(0, { vim.api.nvim_buf_line_count(0), 0 })
        vim.cmd('AiIdeGenerate a function that adds two numbers')
        wait_for('generated code', function()
          for _, message in ipairs(results.messages) do
            local text = message.message
            if text:find('inserted generated code', 1, true) or text:find('nothing was generated', 1, true)
              or text:find('failed', 1, true) or text:find('could not be applied', 1, true) then
              return true
            end
          end
        end, function()
          step('generated')
          results.generate_before = before
          results.generate_after = buffer_text()
          unload()
        end)
      end)
    end)
  end)
end

local scenario = scenarios[test.scenario]
if not scenario then
  finish('unknown scenario ' .. tostring(test.scenario))
else
  -- Show window/showMessage as a notification we can read.
  vim.lsp.handlers['window/showMessage'] = function(_, params)
    vim.notify(params.message, params.type)
  end
  local timer = assert(vim.uv.new_timer())
  timer:start(test.timeout_ms + 5000, 0, vim.schedule_wrap(function()
    finish('scenario timed out')
  end))
  vim.api.nvim_create_autocmd('VimEnter', {
    once = true,
    callback = vim.schedule_wrap(function()
      local ok, err = pcall(scenario)
      if not ok then
        finish('scenario failed: ' .. tostring(err))
      end
    end),
  })
end
