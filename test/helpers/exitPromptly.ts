/**
 * A test file's process ends at its 'exit' event. Node 20 can otherwise spin forever after the last test, inside
 * Environment::CleanupHandles (gdb on a reliability test's process, 12 minutes after its last test had passed:
 * uv_run under FreeEnvironment at 100 % CPU, no socket left open), and the suite then never ends. Everything is
 * written by then: the test runner's report goes through a pipe, synchronous on Linux, and the exit code is the one
 * the runner set. Registered after the module's tests are declared, so that the runner's own 'exit' handlers run
 * first.
 */
setImmediate(() => {
  process.on('exit', (code) => {
    (process as unknown as { reallyExit(code: number): never }).reallyExit(code);
  });
});
