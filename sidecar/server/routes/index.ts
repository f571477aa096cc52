/**
 * Every route group of the API, registered in this order. A new group is one file here and one line in ROUTES.
 */
import type { FastifyInstance } from 'fastify';
import type { SidecarContext } from '../context.js';
import * as backup from './backup.js';
import * as cluster from './cluster.js';
import * as events from './events.js';
import * as health from './health.js';
import * as jobs from './jobs.js';
import * as metrics from './metrics.js';
import * as node from './node.js';
import * as openapi from './openapi.js';
import * as restore from './restore.js';
import * as segments from './segments.js';
import * as snapshots from './snapshots.js';
import * as store from './store.js';
import * as targets from './targets.js';
import * as verify from './verify.js';

export interface RouteModule {
  register(app: FastifyInstance, ctx: SidecarContext): void | Promise<void>;
}

export const ROUTES: RouteModule[] = [health, node, segments, backup, restore, targets, jobs, events, store, verify, snapshots, cluster, metrics, openapi];
