-- Run by tests/lsp/nvim_test.sh after init.lua has opened a .skel file: waits (10 s at most)
-- for the server's diagnostics and writes what it found to $SKEL_NVIM_RESULT, one line each:
-- `filetype=..`, `clients=N`, then `diag=LNUM:COL:CODE:MESSAGE` per diagnostic (LNUM and COL
-- from 0, COL in bytes, as Neovim stores it), or `timeout`.
local out = assert(io.open(os.getenv("SKEL_NVIM_RESULT"), "w"))
out:write("filetype=" .. vim.bo.filetype .. "\n")
local got = vim.wait(10000, function() return #vim.diagnostic.get(0) > 0 end, 50)
local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = 0 }) or vim.lsp.buf_get_clients(0)
out:write("clients=" .. #vim.tbl_keys(clients) .. "\n")
if not got then out:write("timeout\n") end
for _, d in ipairs(vim.diagnostic.get(0)) do
  local message = tostring(d.message):gsub("\n", " | ")
  out:write(("diag=%d:%d:%s:%s\n"):format(d.lnum, d.col, tostring(d.code), message))
end
out:close()
vim.cmd("qall!")
