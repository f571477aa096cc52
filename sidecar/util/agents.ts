/**
 * Retiring a keep-alive agent whose target is no longer kept open (the daemon's bounded cache of targets evicted
 * it): its idle connections close now, and each connection still carrying a call closes when that call ends, so a
 * job that still holds the target finishes undisturbed (a later call just opens a connection of its own).
 */
import type { Agent } from 'node:http';

export function retireAgent(agent: Agent): void {
  // Node's agent closes a freed socket instead of keeping it once it holds maxFreeSockets idle ones.
  agent.maxFreeSockets = 0;
  for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
}
