// The SKEL extension: `.skel` files get the TextMate grammar (syntaxes/) and the language
// configuration; this file starts `skel lsp` over stdio for them with vscode-languageclient
// and gives the command "SKEL: Restart language server".
"use strict";
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");
const { resolveCommand, initializationOptions, ARGS } = require("./server");

let client;
let output;

function firstFolder() {
  const folders = vscode.workspace.workspaceFolders;
  return folders && folders.length ? folders[0].uri.fsPath : undefined;
}

/// Starts the server with the current settings; shows an error (with a button to the
/// setting) and starts nothing when the binary cannot be found.
async function start() {
  const config = vscode.workspace.getConfiguration("skel");
  const found = resolveCommand(config.get("path"), { folder: firstFolder() });
  if (found.error) {
    output.appendLine(found.error);
    vscode.window.showErrorMessage(found.error, "Open Settings").then((choice) => {
      if (choice) vscode.commands.executeCommand("workbench.action.openSettings", "skel.path");
    });
    return;
  }
  output.appendLine(`Starting ${found.command} ${ARGS.join(" ")}`);
  const run = { command: found.command, args: ARGS, transport: TransportKind.stdio };
  client = new LanguageClient(
    "skel",
    "SKEL",
    { run, debug: run },
    {
      documentSelector: [
        { scheme: "file", language: "skel" },
        { scheme: "untitled", language: "skel" },
      ],
      outputChannel: output,
      // The trace for hover and completion, read when the server starts...
      initializationOptions: initializationOptions(config.get("trace")),
      // ...and sent again (`{"skel": {...}}`) whenever a `skel.*` setting changes.
      synchronize: { configurationSection: "skel" },
    },
  );
  try {
    await client.start();
  } catch (e) {
    const message = `skel lsp (${found.command}) did not start: ${e && e.message ? e.message : e}`;
    output.appendLine(message);
    vscode.window.showErrorMessage(message);
    client = undefined;
  }
}

async function stop() {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop();
    } catch (e) {
      output.appendLine(`Stopping skel lsp: ${e && e.message ? e.message : e}`);
    }
  }
}

async function restart() {
  await stop();
  await start();
}

async function activate(context) {
  output = vscode.window.createOutputChannel("SKEL");
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand("skel.restartServer", restart),
    // A new binary needs a new server; a new trace is sent to the running one.
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("skel.path")) restart();
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
