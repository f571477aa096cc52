/**
 * Choosing where a segment goes: pure, so every rule is tested without processes and every decision can be shown
 * (`GET /data/v1/targets`). In order:
 *   1. availability: a target whose circuit is open (failed its health check or its last transfers) is skipped;
 *   2. capacity: a target that cannot hold the segment plus a safety margin, counting bytes already on their way
 *      to it, is skipped before any byte is sent;
 *   3. latency: the lowest measured round-trip time wins, RTTs within the same band counting as equal;
 *   4. then a target in this node's zone;
 *   5. then weight: among equals, the one with the fewest bytes sent per unit of weight, so equal targets share
 *      the load in proportion to their weights.
 * Further copies go to targets in zones that hold no copy yet (a target without a zone is a zone of its own).
 */
import { formatBytes } from '../druid/bytes.js';

/** Free space kept beyond the segment: stats are a few seconds old and other nodes write to the same target. */
export const SAFETY_MIN_BYTES = 1024 * 1024;
export const SAFETY_FRACTION = 0.1;
/** Round-trip times closer than this count as equal, so zone and weight decide between near targets. */
export const RTT_BAND_MS = 5;

export interface Candidate {
  url: string;
  zone?: string;
  weight: number;
  /** False while the circuit is open, or the target answered nonsense. */
  available: boolean;
  /** Why it is not available. */
  down?: string;
  /** Bytes the target says it can still take (its disk or quota, whichever is less); undefined = unknown. */
  freeBytes?: number;
  /** Bytes on their way to it now, not yet in its stats. */
  inFlightBytes: number;
  rttMs?: number;
  /** Bytes this node sent it so far (load sharing). */
  sentBytes: number;
}

export interface ChoiceInput {
  bytes: number;
  copies: number;
  localZone?: string;
  /** Targets that already hold a good copy: they count towards `copies` and their zones are taken. */
  holders: string[];
  /** Targets not to use (already tried and failed for this segment). */
  exclude?: Set<string>;
}

export interface Choice {
  /** New targets to send to, best first. */
  chosen: string[];
  /** Targets that could take a copy if a chosen one fails, in order. */
  fallbacks: string[];
  /** For every candidate, why it was or was not chosen. */
  reasons: Map<string, string>;
}

export function neededBytes(bytes: number): number {
  return bytes + Math.max(SAFETY_MIN_BYTES, Math.ceil(bytes * SAFETY_FRACTION));
}

export function zoneKey(c: { url: string; zone?: string }): string {
  return c.zone ?? `url:${c.url}`;
}

function band(rtt: number | undefined): number {
  return rtt === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(rtt / RTT_BAND_MS);
}

/** Orders usable targets: nearest band first, then this zone, then least loaded per weight, then URL. */
export function compareCandidates(a: Candidate, b: Candidate, localZone?: string): number {
  return (
    band(a.rttMs) - band(b.rttMs) ||
    Number(b.zone !== undefined && b.zone === localZone) - Number(a.zone !== undefined && a.zone === localZone) ||
    a.sentBytes / a.weight - b.sentBytes / b.weight ||
    b.weight - a.weight ||
    a.url.localeCompare(b.url)
  );
}

function rtt(c: Candidate): string {
  return c.rttMs === undefined ? 'RTT unknown' : `RTT ${c.rttMs.toFixed(1)} ms`;
}

export function choose(cands: Candidate[], input: ChoiceInput): Choice {
  const reasons = new Map<string, string>();
  const holders = new Set(input.holders);
  const zonesTaken = new Set(cands.filter((c) => holders.has(c.url)).map(zoneKey));
  const need = neededBytes(input.bytes);
  const usable: Candidate[] = [];
  for (const c of cands) {
    if (holders.has(c.url)) reasons.set(c.url, 'holds a copy already');
    else if (input.exclude?.has(c.url)) reasons.set(c.url, 'skipped: failed this segment a moment ago');
    else if (!c.available) reasons.set(c.url, `skipped: ${c.down ?? 'unavailable'}`);
    else if (c.freeBytes !== undefined && c.freeBytes - c.inFlightBytes < need)
      reasons.set(
        c.url,
        `skipped: ${formatBytes(Math.max(0, c.freeBytes - c.inFlightBytes))} free${c.inFlightBytes ? ' (after transfers under way)' : ''}, the segment needs ${formatBytes(need)} with the safety margin`,
      );
    else usable.push(c);
  }
  usable.sort((a, b) => compareCandidates(a, b, input.localZone));
  const chosen: string[] = [];
  const fallbacks: string[] = [];
  const wanted = Math.max(0, input.copies - holders.size);
  const best = usable[0];
  for (const c of usable) {
    const zone = zoneKey(c);
    if (chosen.length < wanted && !zonesTaken.has(zone)) {
      chosen.push(c.url);
      zonesTaken.add(zone);
      const why =
        c === best ? `chosen: ${rtt(c)}, the nearest available target with room` : `chosen: copy ${holders.size + chosen.length} of ${input.copies}, ${rtt(c)}`;
      reasons.set(c.url, `${why}${c.zone !== undefined && c.zone === input.localZone ? ', same zone' : ''}`);
      continue;
    }
    fallbacks.push(c.url);
    if (chosen.length >= wanted) reasons.set(c.url, wanted === 0 ? 'not needed: enough copies exist' : `not chosen: ${rtt(c)}, enough targets were nearer`);
    else reasons.set(c.url, `not chosen: zone ${c.zone ?? c.url} already holds a copy`);
  }
  return { chosen, fallbacks, reasons };
}
