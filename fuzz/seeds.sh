#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs taken from the repository (examples, test data,
# the shared conformance corpus and traces), and the language-server sessions written below.
# Run from anywhere; files already there are kept (libFuzzer adds what it finds).
set -euo pipefail
cd "$(dirname "$0")"
repo=..
shared=../../shared
c=corpus
mkdir -p $c/compile_text $c/compile_structured $c/format $c/trace_read $c/manifests $c/lsp_messages

small() { find "$@" -type f -size -64k 2>/dev/null || true; }
# A seed's name: its path, without the leading `../`s, `/` made `_`.
name() { echo "$1" | sed 's|^\(\.\./\)*||' | tr / _; }

# Scripts.
for f in $(small $repo/examples $repo/tests/data $shared/conformance -name '*.skel'); do
    cp "$f" "$c/compile_text/$(name "$f")"
    cp "$f" "$c/format/$(name "$f")"
done

# Traces (JSON and msgpack).
for f in $(small $repo/tests/data $repo/trace/tests/data $shared/traces $repo/examples \( -name '*.json' -o -name '*.sktrace' \)); do
    cp "$f" "$c/trace_read/$(name "$f")"
done

# Manifests (YAML and JSON).
for f in $(small $repo/tests/data/check $repo/examples \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \)); do
    cp "$f" "$c/manifests/$(name "$f")"
done

# Language-server sessions in the target's framed mode: a first byte 0x01, then the messages'
# bodies, each ended by a NUL byte (see checks::lsp_input).
session() {
    local name=$1 script=$2
    local uri='file:///tmp/skel-fuzz/a.skel'
    local text
    text=$(printf '%s' "$script" | sed 's/\\/\\\\/g; s/"/\\"/g' | awk '{printf "%s\\n", $0}')
    local pos='"textDocument": {"uri": "'$uri'"}, "position": {"line": 0, "character": 12}'
    {
        printf '\x01'
        printf '%s\0' \
            '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {"general": {"positionEncodings": ["utf-8"]}}, "rootUri": "file:///tmp/skel-fuzz"}}' \
            '{"jsonrpc": "2.0", "method": "initialized", "params": {}}' \
            '{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": "'$uri'", "languageId": "skel", "version": 1, "text": "'"$text"'"}}}' \
            '{"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {'"$pos"'}}' \
            '{"jsonrpc": "2.0", "id": 3, "method": "textDocument/completion", "params": {'"$pos"'}}' \
            '{"jsonrpc": "2.0", "id": 4, "method": "textDocument/definition", "params": {'"$pos"'}}' \
            '{"jsonrpc": "2.0", "id": 5, "method": "textDocument/references", "params": {'"$pos"', "context": {"includeDeclaration": true}}}' \
            '{"jsonrpc": "2.0", "id": 6, "method": "textDocument/prepareRename", "params": {'"$pos"'}}' \
            '{"jsonrpc": "2.0", "id": 7, "method": "textDocument/rename", "params": {'"$pos"', "newName": "$z"}}' \
            '{"jsonrpc": "2.0", "id": 8, "method": "textDocument/formatting", "params": {"textDocument": {"uri": "'$uri'"}, "options": {"tabSize": 4, "insertSpaces": true}}}' \
            '{"jsonrpc": "2.0", "id": 9, "method": "textDocument/documentSymbol", "params": {"textDocument": {"uri": "'$uri'"}}}' \
            '{"jsonrpc": "2.0", "id": 10, "method": "textDocument/semanticTokens/full", "params": {"textDocument": {"uri": "'$uri'"}}}' \
            '{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": "'$uri'", "version": 2}, "contentChanges": [{"range": {"start": {"line": 0, "character": 3}, "end": {"line": 0, "character": 5}}, "text": "x]"}]}}' \
            '{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 10}}' \
            '{"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration", "params": {"settings": {"skel": {"trace": "trace.json"}}}}' \
            '{"jsonrpc": "2.0", "id": 11, "method": "shutdown"}' \
            '{"jsonrpc": "2.0", "method": "exit"}'
    } > "$c/lsp_messages/$name"
}
session vars 'remove($c := spec.template.spec.containers[*] | $c.image =~ "nginx", $c.ports);'
session modify 'modify(kind == "CronJob" && apiVersion == "batch/v1beta1", apiVersion = "batch/v1");
delete(@t > 5m || !exists(metadata.labels.app));'
session broken 'delete(kind == "Pod" x);
remove(spec.containers.0.ports'
session utf 'modify(metadata.labels["é✓"] = "日本");'
echo "corpus: $(for d in $c/*; do printf '%s=%s ' "${d#$c/}" "$(ls "$d" | wc -l)"; done)"
