// Verifying webhook deliveries in a receiver, with WebCrypto (Node 20+ and browsers).
import type { components } from './generated/openapi.js';
import { AIIDEError } from './errors.js';

export type WebhookPayload = components['schemas']['WebhookPayload'];

/** The delivery is not genuine, or too old (a replay?). */
export class WebhookVerificationError extends AIIDEError {
  override name = 'WebhookVerificationError';
}

const encoder = new TextEncoder();

async function hmac(secret: string, data: Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    'raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'],
  );
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, data as BufferSource));
}

function equal(a: string, b: string): boolean {
  // Constant time for equal lengths (the length of a MAC is no secret).
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function base64(bytes: Uint8Array): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function header(headers: Headers | Record<string, string | string[] | undefined>, name: string): string {
  const value = headers instanceof Headers
    ? headers.get(name)
    : Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) throw new WebhookVerificationError(`missing ${name} header`);
  return text;
}

export interface VerifyOptions {
  /** Seconds a delivery's `webhook-timestamp` may be off (default 300). */
  toleranceSeconds?: number;
  /** Unix seconds to check against (default: now). */
  now?: number;
}

/**
 * The payload of a genuine, fresh delivery; throws `WebhookVerificationError`.
 *
 * Checks the `webhook-signature` header (HMAC-SHA256 over
 * `{webhook-id}.{webhook-timestamp}.{raw body}`), the timestamp, and the
 * body's own `signature` (HMAC over the canonical JSON of `event_type`,
 * `timestamp` and `data`). The server sends the body already canonical
 * (sorted keys, no spaces), so the signed bytes are the raw body without its
 * `signature` member: no JSON re-encoding, whose number formatting could differ.
 */
export async function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string | string[] | undefined>,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): Promise<WebhookPayload> {
  const raw = typeof body === 'string' ? encoder.encode(body) : body;
  const text = typeof body === 'string' ? body : new TextDecoder().decode(body);
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const sentAt = Number(stamp);
  if (!Number.isInteger(sentAt)) throw new WebhookVerificationError('webhook-timestamp is not an integer');
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - sentAt) > (options.toleranceSeconds ?? 300)) {
    throw new WebhookVerificationError('stale webhook-timestamp (a replay?)');
  }
  const prefix = encoder.encode(`${id}.${stamp}.`);
  const signed = new Uint8Array(prefix.length + raw.length);
  signed.set(prefix);
  signed.set(raw, prefix.length);
  const expected = base64(await hmac(secret, signed));
  const offered = header(headers, 'webhook-signature').split(' ').filter((s) => s.startsWith('v1,'));
  if (!offered.some((s) => equal(s.slice(3), expected))) {
    throw new WebhookVerificationError('bad webhook-signature');
  }
  // The top-level member comes after data and event_type (sorted keys), so it is the last one.
  const marker = text.lastIndexOf(',"signature":"sha256=');
  const end = marker < 0 ? -1 : text.indexOf('"', marker + ',"signature":"'.length);
  if (marker < 0 || end < 0) throw new WebhookVerificationError('the body is not a webhook payload');
  const signature = text.slice(marker + ',"signature":"'.length, end);
  const unsigned = text.slice(0, marker) + text.slice(end + 1);
  const digest = `sha256=${hex(await hmac(secret, encoder.encode(unsigned)))}`;
  if (!equal(signature, digest)) throw new WebhookVerificationError('bad payload signature');
  return JSON.parse(text) as WebhookPayload;
}
