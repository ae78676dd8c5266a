--- Ghost text from `textDocument/inlineCompletion`, for the buffers ai_ide serves.
---
--- The plugin's own, rather than vim.lsp.inline_completion, so that it can
--- promise what a user expects of ghost text:
--- - requests only for the buffer being edited (autocommands are buffer-local),
---   debounced, the previous one cancelled;
--- - a suggestion is drawn only while it still fits the text: an answer that
---   arrives after the user typed on is kept only if what was typed is the
---   start of the suggestion (the rest is shown), else dropped;
--- - ranges are checked against the text they were computed for, and drawing
---   never raises (a bad position draws nothing instead of an error);
--- - accepting is its own undo step.
local M = {}

local api = vim.api

local METHOD = 'textDocument/inlineCompletion'
local AUTOMATIC = 2 -- lsp.InlineCompletionTriggerKind.Automatic

M.namespace = api.nvim_create_namespace('ai_ide.suggestion')

--- Milliseconds of quiet typing before a request.
M.debounce_ms = 150

api.nvim_set_hl(0, 'AiIdeSuggestion', { link = 'Comment', default = true })

---@class ai_ide.inline.Item
---@field text string what is inserted at the anchor
---@field replace integer bytes after the anchor that the item replaces

---@class ai_ide.inline.Suggestion
---@field items ai_ide.inline.Item[]
---@field index integer
---@field row integer 0-based row of the anchor
---@field col integer byte column of the anchor (the cursor when drawn)
---@field after string the line's text after the anchor, when drawn
---@field tick integer b:changedtick when drawn

---@class ai_ide.inline.Pending
---@field id integer? request id
---@field client_id integer
---@field row integer
---@field col integer
---@field line string
---@field tick integer

---@class ai_ide.inline.State
---@field client_id integer
---@field augroup integer
---@field timer uv.uv_timer_t?
---@field pending ai_ide.inline.Pending?
---@field suggestion ai_ide.inline.Suggestion?

---@type table<integer, ai_ide.inline.State>
local buffers = {}

local function in_insert_mode()
  return api.nvim_get_mode().mode:sub(1, 1) == 'i'
end

--- Cursor of the current window as (0-based row, byte column).
local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function line_at(bufnr, row)
  local ok, lines = pcall(api.nvim_buf_get_lines, bufnr, row, row + 1, true)
  return ok and lines[1] or nil
end

local function hide(bufnr)
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
end

local function stop_timer(state)
  local timer = state.timer
  state.timer = nil
  if timer and not timer:is_closing() then
    timer:stop()
    timer:close()
  end
end

local function cancel_pending(state)
  local pending = state.pending
  state.pending = nil
  if pending and pending.id then
    local client = vim.lsp.get_client_by_id(pending.client_id)
    if client and not client:is_stopped() then
      pcall(function()
        client:cancel_request(pending.id)
      end)
    end
  end
end

--- Drops the suggestion, the pending request and the timer of {bufnr}.
---@param bufnr integer
function M.clear(bufnr)
  local state = buffers[bufnr]
  if state then
    stop_timer(state)
    cancel_pending(state)
    state.suggestion = nil
  end
  hide(bufnr)
end

--- Tabs shown as spaces: virtual text does not expand them.
local function display(text, bufnr)
  if not text:find('\t', 1, true) then
    return text
  end
  return (text:gsub('\t', string.rep(' ', vim.bo[bufnr].tabstop)))
end

local function draw(bufnr, suggestion)
  hide(bufnr)
  local item = suggestion.items[suggestion.index]
  if not item then
    return
  end
  local lines = vim.split(item.text, '\n', { plain = true })
  local first = lines[1]
  if #lines == 1 and item.replace > 0 then
    -- The item rewrites what follows the cursor (e.g. a closing bracket it
    -- also produces): show only what comes before that text, which stays.
    local replaced = suggestion.after:sub(1, item.replace)
    if replaced ~= '' and vim.endswith(first, replaced) then
      first = first:sub(1, #first - #replaced)
    end
  end
  local opts = { hl_mode = 'combine', virt_text_pos = 'inline' }
  if first ~= '' then
    opts.virt_text = { { display(first, bufnr), 'AiIdeSuggestion' } }
  end
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { display(lines[i], bufnr), 'AiIdeSuggestion' } })
    end
  end
  if not opts.virt_text and not opts.virt_lines then
    return
  end
  -- Positions were checked against the current text; should the buffer still
  -- disagree, nothing is drawn rather than an error raised mid-typing.
  pcall(api.nvim_buf_set_extmark, bufnr, M.namespace, suggestion.row, suggestion.col, opts)
end

--- Items still valid after {typed} was typed at the anchor: their rest.
---@param items ai_ide.inline.Item[]
---@param typed string
---@return ai_ide.inline.Item[]
local function advance(items, typed)
  local kept = {}
  for _, item in ipairs(items) do
    if #item.text > #typed and item.text:sub(1, #typed) == typed then
      table.insert(kept, { text = item.text:sub(#typed + 1), replace = item.replace })
    end
  end
  return kept
end

--- Shows {items} anchored at the request's position, if the text typed since
--- then starts them; returns whether anything is shown.
---@param bufnr integer
---@param state ai_ide.inline.State
---@param anchor { row: integer, col: integer, after: string }
---@param items ai_ide.inline.Item[]
local function place(bufnr, state, anchor, items)
  local row, col = cursor()
  local line = line_at(bufnr, row)
  if not line or row ~= anchor.row or col < anchor.col then
    return false
  end
  -- What follows the cursor must be what followed the anchor: typing inserts
  -- at the cursor; anything else (a deletion, <C-u>, an edit elsewhere on
  -- the line) means the suggestion no longer fits.
  if line:sub(col + 1) ~= anchor.after then
    return false
  end
  local typed = line:sub(anchor.col + 1, col)
  local kept = advance(items, typed)
  if #kept == 0 then
    return false
  end
  state.suggestion = {
    items = kept,
    index = 1,
    row = row,
    col = col,
    after = anchor.after,
    tick = api.nvim_buf_get_changedtick(bufnr),
  }
  draw(bufnr, state.suggestion)
  return true
end

--- Keeps the drawn suggestion if it still fits the text at the cursor, else drops it.
local function reconcile(bufnr, state)
  local suggestion = state.suggestion
  if not suggestion then
    return
  end
  if suggestion.tick == api.nvim_buf_get_changedtick(bufnr) then
    local row, col = cursor()
    if row == suggestion.row and col == suggestion.col then
      return
    end
  end
  state.suggestion = nil
  if not place(bufnr, state, suggestion, suggestion.items) then
    hide(bufnr)
  end
end

--- Byte column of an LSP character offset in {line}, or nil when it is not on the line.
local function byte_col(line, character, encoding)
  local ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  if not ok or col == nil or col > #line then
    return nil
  end
  return col
end

--- The items of an answer, placed relative to the request's cursor. Ranges
--- are read against the line as it was when the request was sent (the text
--- the server answered for); items whose range does not fit are dropped.
---@param pending ai_ide.inline.Pending
---@param result table
---@param encoding string
---@return ai_ide.inline.Item[]
local function read_items(pending, result, encoding)
  local items = {}
  for _, raw in ipairs(result.items or result) do
    local text = raw.insertText
    if type(text) == 'table' then
      text = text.value -- a snippet: shown and inserted as plain text
    end
    if type(text) == 'string' and text ~= '' then
      local replace = 0
      local range = raw.range
      if type(range) == 'table' then
        local start_col, end_col
        if range.start.line == pending.row and range['end'].line == pending.row then
          start_col = byte_col(pending.line, range.start.character, encoding)
          end_col = byte_col(pending.line, range['end'].character, encoding)
        end
        if start_col and end_col and start_col <= pending.col and end_col >= pending.col then
          -- The range may start before the cursor (the word being typed): the
          -- item must repeat that text, which is then not shown again.
          local before = pending.line:sub(start_col + 1, pending.col)
          if text:sub(1, #before) == before then
            text = text:sub(#before + 1)
            replace = end_col - pending.col
          else
            text = nil
          end
        else
          text = nil
        end
      end
      if text and text ~= '' then
        table.insert(items, { text = text, replace = replace })
      end
    end
  end
  return items
end

local function request(bufnr)
  local state = buffers[bufnr]
  if not state or api.nvim_get_current_buf() ~= bufnr or not in_insert_mode() then
    return
  end
  local client = vim.lsp.get_client_by_id(state.client_id)
  if not client or client:is_stopped() or not client.attached_buffers[bufnr] then
    return
  end
  cancel_pending(state)
  local row, col = cursor()
  local line = line_at(bufnr, row)
  if not line then
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  ---@diagnostic disable-next-line: inject-field
  params.context = { triggerKind = AUTOMATIC }
  ---@type ai_ide.inline.Pending
  local pending = {
    client_id = client.id,
    row = row,
    col = col,
    line = line,
    tick = api.nvim_buf_get_changedtick(bufnr),
  }
  state.pending = pending
  local ok, id = client:request(METHOD, params, function(err, result)
    if state.pending ~= pending then
      return -- superseded by a newer request
    end
    state.pending = nil
    if err or type(result) ~= 'table' then
      return -- a failed suggestion is not worth a message on every keystroke
    end
    if buffers[bufnr] ~= state or api.nvim_get_current_buf() ~= bufnr or not in_insert_mode() then
      return
    end
    local items = read_items(pending, result, client.offset_encoding)
    local anchor = { row = row, col = col, after = line:sub(col + 1) }
    if not place(bufnr, state, anchor, items) then
      -- Nothing new fits: keep the drawn suggestion only if it still does.
      reconcile(bufnr, state)
    end
  end, bufnr)
  if ok then
    pending.id = id
  else
    state.pending = nil
  end
end

local function schedule(bufnr, state)
  stop_timer(state)
  local timer = vim.uv.new_timer()
  if not timer then
    return
  end
  state.timer = timer
  timer:start(
    M.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if state.timer == timer then
        stop_timer(state)
        request(bufnr)
      end
    end)
  )
end

local function on_edit(bufnr)
  local state = buffers[bufnr]
  if not state or api.nvim_get_current_buf() ~= bufnr then
    return
  end
  reconcile(bufnr, state)
  schedule(bufnr, state)
end

--- Serves {bufnr} with suggestions from client {client_id} (idempotent).
---@param bufnr integer
---@param client_id integer
function M.attach(bufnr, client_id)
  local state = buffers[bufnr]
  if state then
    state.client_id = client_id
    return
  end
  local augroup = api.nvim_create_augroup('ai_ide.inline.' .. bufnr, { clear = true })
  buffers[bufnr] = { client_id = client_id, augroup = augroup }
  -- Buffer-local: typing in one buffer never sends requests for another.
  api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'TextChangedP', 'CursorMovedI' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      on_edit(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

--- Stops serving {bufnr}.
---@param bufnr integer
function M.detach(bufnr)
  local state = buffers[bufnr]
  if not state then
    return
  end
  M.clear(bufnr)
  buffers[bufnr] = nil
  pcall(api.nvim_del_augroup_by_id, state.augroup)
end

--- Whether {bufnr} is served.
---@param bufnr integer
function M.attached(bufnr)
  return buffers[bufnr] ~= nil
end

--- The text of the suggestion drawn in {bufnr}, if it was drawn for the text
--- and cursor as they are now (every edit re-checks it). Changes nothing, so
--- it may run where the text is locked (an `expr` mapping).
---@param bufnr integer?
---@return string?
function M.current(bufnr)
  bufnr = bufnr == nil and api.nvim_get_current_buf() or bufnr
  local state = buffers[bufnr]
  local suggestion = state and state.suggestion
  if not suggestion or api.nvim_get_current_buf() ~= bufnr then
    return nil
  end
  local row, col = cursor()
  if
    suggestion.tick ~= api.nvim_buf_get_changedtick(bufnr)
    or row ~= suggestion.row
    or col ~= suggestion.col
  then
    return nil
  end
  local item = suggestion.items[suggestion.index]
  return item and item.text or nil
end

--- Inserts the drawn suggestion at the cursor; false when none fits.
--- Called through the accept mapping, between two undo breaks.
---@param bufnr integer?
---@return boolean
function M.accept(bufnr)
  bufnr = bufnr == nil and api.nvim_get_current_buf() or bufnr
  if not M.current(bufnr) then
    return false
  end
  local state = buffers[bufnr]
  local suggestion = assert(state.suggestion)
  local item = suggestion.items[suggestion.index]
  M.clear(bufnr)
  local line = line_at(bufnr, suggestion.row) or ''
  local end_col = math.min(#line, suggestion.col + item.replace)
  local lines = vim.split(item.text, '\n', { plain = true })
  local ok = pcall(
    api.nvim_buf_set_text,
    bufnr,
    suggestion.row,
    suggestion.col,
    suggestion.row,
    end_col,
    lines
  )
  if not ok then
    return false
  end
  local last = #lines == 1 and suggestion.col + #lines[1] or #lines[#lines]
  pcall(api.nvim_win_set_cursor, 0, { suggestion.row + #lines, last })
  return true
end

--- Shows the next ({count} > 0) or previous suggestion, when there are several.
---@param count integer
function M.select(count)
  local bufnr = api.nvim_get_current_buf()
  if not M.current(bufnr) then
    return
  end
  local suggestion = assert(buffers[bufnr].suggestion)
  local n = #suggestion.items
  suggestion.index = (suggestion.index - 1 + count) % n + 1
  draw(bufnr, suggestion)
end

--- Hides the suggestion and cancels the pending request.
function M.dismiss()
  M.clear(api.nvim_get_current_buf())
end

--- Keys for an `expr` accept mapping: an undo break, the insertion, another
--- undo break (so that `u` takes back the suggestion alone), or {fallback}.
---@param fallback string
---@return string
function M.accept_keys(fallback)
  if M.current() then
    return '<C-g>u<Cmd>lua require("ai_ide.inline").accept()<CR><C-g>u'
  end
  return fallback
end

--- Keys for an `expr` dismiss mapping: hide a shown suggestion, or {fallback}.
---@param fallback string
---@return string
function M.dismiss_keys(fallback)
  if M.current() then
    return '<Cmd>lua require("ai_ide.inline").dismiss()<CR>'
  end
  return fallback
end

return M
