/**
 * The event bus: segment and job changes, published by whoever knows of them (active backup, the job registry,
 * the store, restore) and streamed to clients as server-sent events on `GET /data/v1/events`.
 */
import { EventEmitter } from 'node:events';
import type { SidecarEvent } from '../api.js';

export type EventListener = (e: SidecarEvent) => void;

export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    // Each SSE client is one listener; the route caps their number.
    this.emitter.setMaxListeners(0);
  }

  publish(e: SidecarEvent): void {
    this.emitter.emit('event', e);
  }

  /** Returns the unsubscribe function. */
  subscribe(fn: EventListener): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }

  get listeners(): number {
    return this.emitter.listenerCount('event');
  }
}
