#!/usr/bin/env bash
# Neovim end to end: the snippet of docs/lsp.md (kept verbatim in tests/lsp/nvim/init.lua, and
# checked to be there) opens a .skel file with an error in a headless Neovim, which starts
# `skel lsp`; the diagnostic Neovim stores must have the server's code, message and position
# (its column in bytes, converted by Neovim from the server's UTF-16, after multi-byte text).
# Usage: tests/lsp/nvim_test.sh   (SKEL_BIN: the skel binary, default target/debug/skel)
# Exit 0 when it passed, 1 when not.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

fail() {
  echo "nvim_test: FAIL: $*" >&2
  echo "nvim: 0 passed, 1 failed"
  exit 1
}

command -v nvim >/dev/null 2>&1 || fail "nvim is not installed"
bin=${SKEL_BIN:-target/debug/skel}
[[ $bin == /* ]] || bin=$root/$bin
[[ -x $bin ]] || fail "no skel binary at $bin (cargo build, or set SKEL_BIN)"

# The documented snippet is the tested one.
snippet=$(<tests/lsp/nvim/init.lua)
doc=$(<docs/lsp.md)
fence='```'
[[ $doc == *"${fence}lua"$'\n'"$snippet"$'\n'"$fence"* ]] ||
  fail "docs/lsp.md does not hold tests/lsp/nvim/init.lua verbatim in a \`\`\`lua block"
echo "nvim_test: docs/lsp.md holds tests/lsp/nvim/init.lua verbatim"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/work"
ln -s "$bin" "$tmp/bin/skel" # the snippet runs `skel` from PATH
# `é` is 2 bytes and 1 UTF-16 unit, `😀` 4 bytes and 2 units: the `=` is UTF-16 column 38 of
# line 1 (from 0), which Neovim stores as byte column 41.
printf '# café ☕\ndelete(metadata.name == "é😀" && kind = "Pod");\n' >"$tmp/work/bad.skel"

echo "nvim_test: $(nvim --version | head -1), skel at $bin"
status=0
(
  cd "$tmp/work"
  export PATH="$tmp/bin:$PATH" SKEL_NVIM_RESULT="$tmp/result"
  export XDG_CONFIG_HOME="$tmp/xdg/config" XDG_DATA_HOME="$tmp/xdg/data" XDG_STATE_HOME="$tmp/xdg/state" \
    XDG_CACHE_HOME="$tmp/xdg/cache"
  timeout 60 nvim --headless -n -i NONE -u "$root/tests/lsp/nvim/init.lua" bad.skel \
    -c "luafile $root/tests/lsp/nvim/check.lua" </dev/null
) >"$tmp/nvim.out" 2>&1 || status=$?

echo "nvim_test: Neovim exited with $status; it found:"
if [[ -f $tmp/result ]]; then sed 's/^/  /' "$tmp/result"; else echo "  (nothing: no result file)"; fi

ok=1
grep -qx 'filetype=skel' "$tmp/result" 2>/dev/null || { echo "nvim_test: expected filetype=skel"; ok=0; }
grep -qx 'clients=1' "$tmp/result" 2>/dev/null || { echo "nvim_test: expected one LSP client attached"; ok=0; }
diags=$(grep -c '^diag=' "$tmp/result" 2>/dev/null || true)
[[ $diags == 1 ]] || { echo "nvim_test: expected 1 diagnostic, found ${diags:-0}"; ok=0; }
grep -q '^diag=1:41:skel::parse::syntax:unexpected `=`.*help: use `==` to compare' "$tmp/result" 2>/dev/null ||
  { echo "nvim_test: expected diag=1:41:skel::parse::syntax:unexpected \`=\` ... help: use \`==\` to compare"; ok=0; }
[[ $status == 0 ]] || { echo "nvim_test: expected Neovim to exit 0"; ok=0; }

if [[ $ok == 1 ]]; then
  echo "nvim_test: PASS"
  echo "nvim: 1 passed, 0 failed"
  exit 0
fi
echo "nvim_test: Neovim's output:"
sed 's/^/  /' "$tmp/nvim.out"
echo
for log in "$tmp"/xdg/*/nvim/lsp.log; do
  [[ -f $log ]] && { echo "nvim_test: $log:"; tail -n 40 "$log" | sed 's/^/  /'; }
done
echo "nvim: 0 passed, 1 failed"
exit 1
