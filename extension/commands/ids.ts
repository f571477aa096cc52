/**
 * Every command id the extension contributes, in one place: package.json's `contributes.commands`, menus and
 * keybindings name the same strings (test/unit/extension/manifest.test.ts checks that the two agree).
 */
export enum Command {
  AddNode = 'druidBackup.addNode',
  RemoveNode = 'druidBackup.removeNode',
  SetToken = 'druidBackup.setToken',
  Refresh = 'druidBackup.refresh',
  RefreshNode = 'druidBackup.refreshNode',
  BackupNow = 'druidBackup.backupNow',
  Restore = 'druidBackup.restore',
  VerifyTarget = 'druidBackup.verifyTarget',
  RestoreSnapshot = 'druidBackup.restoreSnapshot',
  RestoreCluster = 'druidBackup.restoreCluster',
  RollBackDataSource = 'druidBackup.rollBackDataSource',
  PruneTarget = 'druidBackup.pruneTarget',
  PinSnapshot = 'druidBackup.pinSnapshot',
  UnpinSnapshot = 'druidBackup.unpinSnapshot',
  ShowManifest = 'druidBackup.showManifest',
  CopySegmentId = 'druidBackup.copySegmentId',
  OpenConsole = 'druidBackup.openConsole',
  CancelJob = 'druidBackup.cancelJob',
  LoadMore = 'druidBackup.loadMore',
  ShowOutput = 'druidBackup.showOutput',
  ShowStatus = 'druidBackup.showStatus',
  ShowTimeline = 'druidBackup.showTimeline',
}

/** View ids, as in package.json's `contributes.views`. */
export enum View {
  Nodes = 'druidBackup.nodes',
  Backups = 'druidBackup.backups',
  Jobs = 'druidBackup.jobs',
}

/** The `druidBackup.*` settings. */
export const SETTINGS = 'druidBackup';
