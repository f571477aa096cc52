// Preloaded into a sidecar that a Druid node started (node --require parent-watch.cjs sidecar.js ...): Druid keeps
// the sidecar's stdin open for as long as it runs, so its end means Druid is gone, even after a SIGKILL that
// skipped Druid's own shutdown. The sidecar then gets SIGTERM and shuts down as it always does.
'use strict';
process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.on('error', () => process.kill(process.pid, 'SIGTERM'));
process.stdin.resume();
