#!/usr/bin/env bash
# Builds and tests the VS Code extension (editors/vscode/README.md): installs the pinned npm
# packages (package-lock.json) with `npm ci`, runs the grammar tests (vscode-tmgrammar-test on
# test/grammar/), the unit tests of the client and of the language configuration, the test of
# the client's options and of the grammar against the real `skel lsp` (SKEL_BIN, else `skel` on
# PATH), and packages the extension into dist/skel-VERSION.vsix with `vsce package`.
# Without node and npm it says so and exits 0: the rest of ./test.sh does not need them.
set -euo pipefail
# SKEL_BIN as the caller gave it, relative to the caller's folder.
if [[ -n ${SKEL_BIN:-} && $SKEL_BIN != /* ]]; then export SKEL_BIN=$PWD/$SKEL_BIN; fi
cd "$(dirname "$0")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "editors/vscode/test.sh: SKIPPED: node and npm are not installed, so the VS Code extension" \
    "is neither built nor tested (install Node.js 20 or newer with npm: https://nodejs.org/)"
  exit 0
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "editors/vscode/test.sh: node $(node --version) is too old: the extension's tools need Node.js 20 or newer" >&2
  exit 1
fi

# `npm ci` again only when package-lock.json changed since the last one (the stamp is a copy).
if ! cmp -s package-lock.json node_modules/.skel-package-lock.json 2>/dev/null; then
  echo "editors/vscode/test.sh: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.skel-package-lock.json
fi
bin=node_modules/.bin

echo "editors/vscode/test.sh: grammar tests"
"$bin/vscode-tmgrammar-test" --compact --grammar syntaxes/skel.tmLanguage.json "test/grammar/*.skel"

echo "editors/vscode/test.sh: unit tests"
node --test --test-reporter=spec test/server.test.js test/language.test.js test/extension.test.js

if [[ -n ${SKEL_BIN:-} ]] || command -v skel >/dev/null 2>&1; then
  echo "editors/vscode/test.sh: the client's options and the grammar against skel lsp (${SKEL_BIN:-skel})"
  node --test --test-reporter=spec test/lsp.test.js
else
  echo "editors/vscode/test.sh: SKIPPED the tests against skel lsp: no SKEL_BIN and no skel on PATH"
fi

echo "editors/vscode/test.sh: vsce package"
version=$(node -p 'require("./package.json").version')
rm -rf dist
mkdir -p dist
"$bin/vsce" package --skip-license --allow-missing-repository --out "dist/skel-$version.vsix" 2>&1 |
  grep -Ev '^ *([├└│]|INFO  Files included|skel-.*\.vsix$|=> Run vsce ls|$)' || true
test -s "dist/skel-$version.vsix"
# The package holds what VS Code loads: the manifest, the client, the grammar, the language
# configuration, the README and vscode-languageclient; not the tests.
listing=$(unzip -l "dist/skel-$version.vsix")
for f in extension/package.json extension/src/extension.js extension/src/server.js \
  extension/syntaxes/skel.tmLanguage.json extension/language-configuration.json extension/readme.md \
  extension/node_modules/vscode-languageclient/node.js; do
  grep -q " $f\$" <<<"$listing" || { echo "editors/vscode/test.sh: $f is missing from the .vsix" >&2; exit 1; }
done
if grep -q " extension/test/" <<<"$listing"; then
  echo "editors/vscode/test.sh: the tests went into the .vsix" >&2
  exit 1
fi
echo "editors/vscode/test.sh: built dist/skel-$version.vsix ($(du -h "dist/skel-$version.vsix" | cut -f1))"
