/**
 * Prometheus metrics of the sidecar (`GET /metrics`), in their own registry so two sidecars in one process (tests)
 * do not share counters. Names follow Prometheus conventions: `_total` counters, `_bytes` and `_seconds` units.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  // Source side: active and passive backup.
  readonly segmentsBackedUp = new Counter({
    name: 'druid_backup_segments_backed_up_total',
    help: 'Segments backed up, by outcome (stored: bytes sent; identical: the target already held them).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly bytesSent = new Counter({ name: 'druid_backup_bytes_sent_total', help: 'Segment bytes sent to targets.', registers: [this.registry] });
  readonly failures = new Counter({ name: 'druid_backup_failures_total', help: 'Failed segment transfers (each retry counts).', registers: [this.registry] });
  readonly queueDepth = new Gauge({
    name: 'druid_backup_queue_depth',
    help: 'Complete segments waiting to be backed up by active backup.',
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: 'druid_backup_lag_seconds',
    help: 'Age of the oldest segment waiting for active backup (0 when none waits).',
    registers: [this.registry],
  });
  readonly segmentsHashed = new Counter({
    name: 'druid_backup_segments_hashed_total',
    help: 'Segments whose files were read only to compute digests (no digest cached for them).',
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'druid_backup_reconcile_seconds',
    help: 'Duration of reconcile scans of the cache.',
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly targetUp = new Gauge({
    name: 'druid_backup_target_up',
    help: '1 when the active-backup target answered the last call, else 0.',
    registers: [this.registry],
  });

  // Both sides' bandwidth limits (services/bandwidth.ts).
  readonly maxBytesPerSecond = new Gauge({
    name: 'druid_backup_max_bytes_per_second',
    help: "The node's bandwidth limit by direction (backup: bytes read from the cache to send; restore: bytes received into it); 0 when off.",
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly throttledSeconds = new Counter({
    name: 'druid_backup_throttled_seconds_total',
    help: "Time transfers waited on a bandwidth limit (the node's or a job's own), by direction, summed over concurrent transfers.",
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  // Target side: the store.
  readonly storePuts = new Counter({
    name: 'druid_backup_store_puts_total',
    help: 'Segment uploads received, by outcome (stored, identical, conflict, rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly storeBytesReceived = new Counter({
    name: 'druid_backup_store_bytes_received_total',
    help: 'Bytes of segment files received.',
    registers: [this.registry],
  });
  readonly storeSegments = new Gauge({ name: 'druid_backup_store_segments', help: 'Segments held by the store.', registers: [this.registry] });
  readonly storeBytes = new Gauge({ name: 'druid_backup_store_bytes', help: 'Bytes of segment files held by the store.', registers: [this.registry] });

  readonly httpRequests = new Counter({
    name: 'druid_backup_http_requests_total',
    help: 'API requests, by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'druid_backup_' });
  }
}
