-- SKEL in Neovim 0.7 and later: `*.skel` files get the filetype `skel`, and `skel lsp`
-- (the `skel` binary must be on PATH) serves every skel buffer.
vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
  pattern = "*.skel",
  callback = function() vim.bo.filetype = "skel" end,
})

local skel = {
  name = "skel",
  cmd = { "skel", "lsp" },
  root_dir = vim.fn.getcwd(),
  -- A trace for hover and completion, relative to root_dir ("" for none):
  init_options = { skel = { trace = "" } },
}
local skel_client
vim.api.nvim_create_autocmd("FileType", {
  pattern = "skel",
  callback = function(args)
    if vim.lsp.start then -- Neovim 0.8 and later
      vim.lsp.start(skel, { bufnr = args.buf })
      return
    end
    if not skel_client or vim.lsp.client_is_stopped(skel_client) then
      skel_client = vim.lsp.start_client(skel)
    end
    if skel_client then vim.lsp.buf_attach_client(args.buf, skel_client) end
  end,
})
