/**
 * The Druid Backup extension: wiring only. Views, commands and the sidecar client come in their own modules.
 */
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('Druid Backup', { log: true });
  context.subscriptions.push(output);
  output.info('Druid Backup activated');
}

export function deactivate(): void {}
