/**
 * Read-only JSON documents: a stored segment's manifest and a job's full record (a verify report), under the
 * `druid-backup:` scheme. A content provider's documents cannot be edited, and they are read again from the
 * node when VS Code reopens them.
 */
import * as vscode from 'vscode';
import type { Cluster } from './cluster.js';

export const SCHEME = 'druid-backup';

export function manifestUri(targetUrl: string, segmentId: string): vscode.Uri {
  return vscode.Uri.from({
    scheme: SCHEME,
    path: `/manifest/${segmentId}.json`,
    query: new URLSearchParams({ node: targetUrl, segment: segmentId }).toString(),
  });
}

export function jobUri(nodeUrl: string, jobId: string): vscode.Uri {
  return vscode.Uri.from({ scheme: SCHEME, path: `/job/${jobId}.json`, query: new URLSearchParams({ node: nodeUrl, job: jobId }).toString() });
}

export class JsonDocuments implements vscode.TextDocumentContentProvider {
  constructor(private readonly cluster: Cluster) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const q = new URLSearchParams(uri.query);
    const node = this.cluster.get(q.get('node') ?? '');
    if (!node) throw new Error(`${q.get('node')} is not among the configured nodes`);
    const segment = q.get('segment');
    const job = q.get('job');
    const value = segment ? await node.client.manifest(segment) : job ? await node.client.job(job) : undefined;
    if (value === undefined) throw new Error(`nothing to show for ${uri.toString()}`);
    return `${JSON.stringify(value, null, 2)}\n`;
  }
}
