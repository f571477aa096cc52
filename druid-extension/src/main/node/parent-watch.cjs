// Preloaded into a sidecar that a Druid node started (node --require parent-watch.cjs sidecar.js ...): Druid keeps
// the sidecar's stdin open for as long as it runs, so its end means Druid is gone, even after a SIGKILL that
// skipped Druid's own shutdown. The sidecar then gets SIGTERM and shuts down as it always does. The watch itself
// keeps nothing alive: a sidecar that ends on its own still exits.
'use strict';
const stop = () => process.kill(process.pid, 'SIGTERM');
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
if (typeof process.stdin.unref === 'function') process.stdin.unref();
