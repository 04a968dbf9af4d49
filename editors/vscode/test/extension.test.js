// src/extension.js with VS Code's API and vscode-languageclient replaced by recorders (VS Code
// itself cannot run here): what it starts, with which options, what it says when the binary is
// missing, the restart command, and a restart when `skel.path` changes.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const Module = require("module");

function harness(settings) {
  const log = [];
  const handlers = {};
  let onConfig;
  const vscode = {
    workspace: {
      workspaceFolders: [{ uri: { fsPath: settings.folder } }],
      getConfiguration: (section) => {
        assert.strictEqual(section, "skel");
        return { get: (key) => settings[key] };
      },
      onDidChangeConfiguration: (f) => ((onConfig = f), { dispose() {} }),
    },
    window: {
      createOutputChannel: (name) => ({ name, appendLine: (l) => log.push(["output", l]), dispose() {} }),
      showErrorMessage: (message, ...items) => (log.push(["error", message, ...items]), Promise.resolve(undefined)),
    },
    commands: {
      registerCommand: (id, f) => ((handlers[id] = f), { dispose() {} }),
      executeCommand: (...a) => log.push(["command", ...a]),
    },
  };
  class LanguageClient {
    constructor(id, name, server, client) {
      Object.assign(this, { id, name, server, client });
      log.push(["new client", this]);
    }
    async start() {
      log.push(["start", this.server.run.command]);
    }
    async stop() {
      log.push(["stop", this.server.run.command]);
    }
  }
  const fakes = { vscode, "vscode-languageclient/node": { LanguageClient, TransportKind: { stdio: 0 } } };
  const load = Module._load;
  Module._load = function (request, ...rest) {
    return request in fakes ? fakes[request] : load.call(this, request, ...rest);
  };
  const file = require.resolve("../src/extension");
  delete require.cache[file];
  try {
    const ext = require(file);
    return { ext, log, handlers, changeConfig: (key) => onConfig({ affectsConfiguration: (k) => k === key }) };
  } finally {
    Module._load = load;
  }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "skel-ext-"));
const skel = path.join(tmp, "skel");
fs.writeFileSync(skel, "#!/bin/sh\n");
fs.chmodSync(skel, 0o755);
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const context = () => ({ subscriptions: [] });

test("activation starts `skel lsp` for SKEL files with the trace setting", async () => {
  const h = harness({ folder: tmp, path: "./skel", trace: "traces/t.json" });
  const ctx = context();
  await h.ext.activate(ctx);
  const [, client] = h.log.find((e) => e[0] === "new client");
  assert.deepStrictEqual([client.id, client.name], ["skel", "SKEL"]);
  assert.deepStrictEqual(client.server.run, { command: skel, args: ["lsp"], transport: 0 });
  assert.deepStrictEqual(client.client.documentSelector, [
    { scheme: "file", language: "skel" },
    { scheme: "untitled", language: "skel" },
  ]);
  assert.deepStrictEqual(client.client.initializationOptions, { skel: { trace: "traces/t.json" } });
  assert.deepStrictEqual(client.client.synchronize, { configurationSection: "skel" });
  assert.deepStrictEqual(h.log.filter((e) => e[0] === "start"), [["start", skel]]);
  assert.strictEqual(ctx.subscriptions.length, 3);
  await h.ext.deactivate();
  assert.deepStrictEqual(h.log.at(-1), ["stop", skel]);
});

test("a missing binary is an error message with the way to install skel, and no server", async () => {
  const h = harness({ folder: tmp, path: "./no-such-skel", trace: "" });
  await h.ext.activate(context());
  const errors = h.log.filter((e) => e[0] === "error");
  assert.strictEqual(errors.length, 1);
  assert.match(errors[0][1], /no-such-skel \(the setting skel\.path\) does not exist\. Install skel with `cargo install --path \. --locked`/);
  assert.strictEqual(errors[0][2], "Open Settings");
  assert.ok(!h.log.some((e) => e[0] === "new client"));
});

test("the restart command, and a change of skel.path, stop the server and start a new one", async () => {
  const h = harness({ folder: tmp, path: skel, trace: "" });
  await h.ext.activate(context());
  await h.handlers["skel.restartServer"]();
  assert.deepStrictEqual(h.log.filter((e) => e[0] === "start" || e[0] === "stop").map((e) => e[0]), ["start", "stop", "start"]);
  h.changeConfig("skel.trace"); // sent to the running server by the client, no restart
  h.changeConfig("skel.path");
  await new Promise((r) => setTimeout(r, 10));
  assert.deepStrictEqual(h.log.filter((e) => e[0] === "start" || e[0] === "stop").map((e) => e[0]), ["start", "stop", "start", "stop", "start"]);
});
