/**
 * Secrets out of Druid's metadata before it is stored: a snapshot is kept in buckets and target stores that many
 * people can read, while Druid's supervisor specs, lookups and ingestion settings carry passwords (Kafka's
 * `sasl.jaas.config`, a JDBC lookup's `connectorConfig.password`, AWS keys of an S3 input source). A value is replaced
 * by REDACTED_MARKER, in place, so the rest of the answer stays byte for byte as Druid returned it, and its path is
 * listed so that a restore can say which secrets it needs.
 */
import { REDACTED_MARKER } from '../snapshot/model.js';
import type { JsonNode, Splice } from './jsonText.js';
import { applySplices, member, parseJsonText, pathStep } from './jsonText.js';

/** Member names whose value is a secret: passwords, tokens, keys, JAAS configs, credentials. */
const SECRET_KEY = /passw(?:or)?d|passphrase|secret|token|credential|jaas|api[._-]?key|access[._-]?key|private[._-]?key|authorization/i;

/** String values that carry a secret whatever their name: a `password=` parameter, a URL with a password, an AWS key id, a PEM key. */
const SECRET_VALUE = /password=|pwd=|:\/\/[^/@\s:]+:[^/@\s]+@|\bA(?:KIA|SIA)[0-9A-Z]{16}\b|-----BEGIN [A-Z ]*PRIVATE KEY-----/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export function isSecretValue(value: string): boolean {
  return SECRET_VALUE.test(value);
}

const MARKER_TEXT = JSON.stringify(REDACTED_MARKER);

export interface Redacted {
  text: string;
  /** JSONPath of each replaced value, from `base`. */
  paths: string[];
}

/**
 * Redacts `text` (JSON). Under a secret name: a string or number is replaced; null, a boolean and "" are kept (they
 * hide nothing); a Druid PasswordProvider of type `environment` is kept (it names a variable, which a restore needs);
 * any other typed object (`{"type":"default","password":...}`) keeps its `type` and has every other member replaced;
 * an untyped object or an array is replaced whole.
 */
export function redactJsonText(text: string, base: string): Redacted {
  const splices: Splice[] = [];
  const paths: string[] = [];
  const replace = (node: JsonNode, path: string) => {
    splices.push({ start: node.start, end: node.end, text: MARKER_TEXT });
    paths.push(path);
  };
  const secret = (node: JsonNode, path: string) => {
    switch (node.kind) {
      case 'null':
      case 'true':
      case 'false':
        return;
      case 'string':
        if (node.value !== '' && node.value !== REDACTED_MARKER) replace(node, path);
        return;
      case 'object': {
        const type = member(node, 'type');
        if (type?.kind !== 'string') return replace(node, path);
        if (type.value === 'environment') return;
        for (const m of node.members) if (m.key !== 'type') secret(m.value, path + pathStep(m.key));
        return;
      }
      default:
        replace(node, path);
    }
  };
  const walk = (node: JsonNode, path: string) => {
    if (node.kind === 'object') {
      for (const m of node.members) {
        const p = path + pathStep(m.key);
        if (isSecretKey(m.key)) secret(m.value, p);
        else walk(m.value, p);
      }
    } else if (node.kind === 'array') node.items.forEach((item, i) => walk(item, path + pathStep(i)));
    else if (node.kind === 'string' && isSecretValue(node.value)) replace(node, path);
  };
  walk(parseJsonText(text), base);
  return { text: applySplices(text, splices), paths };
}
