-- Loaded by the init file of the tmux tests (tests/e2e/nvim/test_nvim_tmux.py).
-- The test types with `tmux send-keys` and reads the screen with
-- `tmux capture-pane`, as a person would; it asks these functions (over
-- `nvim --server ... --remote-expr`) only for what the screen cannot show
-- exactly: the buffer's text, the ghost text's place, the requests sent.
local probe = {}

-- Every inlineCompletion request, by document, and every notification the
-- test chose to drop (a "lost" didChange).
local requests = {}
local dropping = {}
-- The last messages to and from the server that decide a refactoring menu
-- (text changes, code-action requests and their answers), for failure reports.
local events = {}

local function note(event)
  table.insert(events, event)
  if #events > 40 then
    table.remove(events, 1)
  end
end

local function client()
  return vim.lsp.get_clients({ name = 'ai_ide' })[1]
end

local function instrument(c)
  if c._ai_ide_probe then
    return
  end
  c._ai_ide_probe = true
  local request = c.request
  c.request = function(self, method, params, ...)
    if method == 'textDocument/inlineCompletion' then
      local uri = params and params.textDocument and params.textDocument.uri or '?'
      requests[uri] = (requests[uri] or 0) + 1
    end
    if method == 'textDocument/codeAction' then
      local handler = select(1, ...)
      note({ client = self.id, method = method, range = params.range })
      if type(handler) == 'function' then
        local rest = { select(2, ...) }
        return request(self, method, params, function(err, result, ctx, config)
          local titles = {}
          for _, action in ipairs(type(result) == 'table' and result or {}) do
            table.insert(titles, action.title)
          end
          note({ client = self.id, answer = method, titles = titles, err = err })
          return handler(err, result, ctx, config)
        end, unpack(rest))
      end
    end
    return request(self, method, params, ...)
  end
  local notify = c.notify
  c.notify = function(self, method, params)
    if dropping[method] then
      return true -- as if sent: the server never hears of it
    end
    if method == 'textDocument/didChange' or method == 'textDocument/didOpen' then
      local document = params.textDocument or {}
      note({
        client = self.id,
        method = method,
        version = document.version,
        changes = params.contentChanges,
        text = document.text,
      })
    end
    return notify(self, method, params)
  end
end

-- Whether the status line ever said "thinking" (the server's $/progress for
-- a slow completion), which a screen read may fall between.
local thinking_seen = false
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function()
    vim.schedule(function()
      if require('ai_ide').statusline() == 'ai-ide: thinking…' then
        thinking_seen = true
      end
    end)
  end,
})

vim.api.nvim_create_autocmd('LspAttach', {
  callback = function(args)
    local c = vim.lsp.get_client_by_id(args.data.client_id)
    if c and c.name == 'ai_ide' then
      instrument(c)
    end
  end,
})

--- Everything the test checks, as JSON.
function probe.state()
  local bufnr = vim.api.nvim_get_current_buf()
  local ghost = vim.NIL
  -- The plugin's ghost text (or Neovim's own, for comparing with it).
  for _, name in ipairs({ 'ai_ide.suggestion', 'nvim.lsp.inline_completion' }) do
    local namespace = vim.api.nvim_get_namespaces()[name]
    for _, mark in ipairs(namespace and vim.api.nvim_buf_get_extmarks(bufnr, namespace, 0, -1, { details = true }) or {}) do
      local parts = {}
      for _, chunk in ipairs(mark[4].virt_text or {}) do
        table.insert(parts, chunk[1])
      end
      local lines = { table.concat(parts) }
      for _, virt_line in ipairs(mark[4].virt_lines or {}) do
        local line = {}
        for _, chunk in ipairs(virt_line) do
          table.insert(line, chunk[1])
        end
        table.insert(lines, table.concat(line))
      end
      ghost = { row = mark[2], col = mark[3], text = table.concat(lines, '\n') }
    end
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local c = client()
  return vim.json.encode({
    text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), '\n'),
    mode = vim.api.nvim_get_mode().mode,
    cursor = { cursor[1] - 1, cursor[2] },
    ghost = ghost,
    file = vim.api.nvim_buf_get_name(bufnr),
    requests = requests,
    client = c and { id = c.id, initialized = c.initialized, attached = c.attached_buffers[bufnr] == true }
      or vim.NIL,
    server_state = require('ai_ide').state.server,
    statusline = require('ai_ide').statusline(),
    messages = vim.api.nvim_exec2('messages', { output = true }).output,
    errmsg = vim.v.errmsg,
    changedtick = vim.api.nvim_buf_get_changedtick(bufnr),
    thinking_seen = thinking_seen,
    events = events,
  })
end

--- Starts (true) or stops (false) dropping the client's {method} notifications.
function probe.drop(method, on)
  dropping[method] = on and true or nil
  return true
end

_G.ai_ide_probe = probe
