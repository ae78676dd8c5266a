-- Minimal init for the recorded demo (record.sh): the plugin from this
-- checkout, the server on the embedded default model (Gemma 3 270M).
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local plugin = vim.fs.dirname(here)
vim.opt.runtimepath:prepend(plugin)
vim.o.laststatus = 2
vim.o.statusline = "%f %m%= %{v:lua.require'ai_ide'.statusline()} "
vim.o.number = true
vim.o.shortmess = vim.o.shortmess .. 'I'
require('ai_ide').setup({
  cmd = { vim.env.AI_IDE_BIN or 'ai-ide', 'lsp', '--no-http' },
  max_tokens = 32,
})
