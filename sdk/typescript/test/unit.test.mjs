// The SDK's pure parts: retry policy, Retry-After, base URLs, camelCase input,
// error classes against the contract's codes, and the webhook verifier.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  ERROR_CLASSES, ModelNotFoundError, NotFoundError, RateLimitError, WebhookVerificationError,
  connectRetryDelay, errorFor, parseRetryAfter, resolveBaseUrl, retryDelay, verifyWebhook,
} from '@ai-ide/sdk';

const openapi = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8'));

test('only 429 and 503 are retried, a bounded number of times', () => {
  for (const status of [400, 401, 404, 409, 422, 500, 502, 504]) {
    assert.equal(retryDelay(1, status, undefined, 2, 60), undefined);
  }
  assert.notEqual(retryDelay(1, 429, undefined, 2, 60), undefined);
  assert.notEqual(retryDelay(2, 503, undefined, 2, 60), undefined);
  assert.equal(retryDelay(3, 503, undefined, 2, 60), undefined);
});

test('a connection that could not be opened is retried with backoff, a bounded number of times', () => {
  assert.equal(connectRetryDelay(1, 2, () => 0), 0.25);
  assert.equal(connectRetryDelay(2, 2, () => 1), 1);
  assert.equal(connectRetryDelay(3, 2), undefined);
  assert.equal(connectRetryDelay(1, 0), undefined);
});

test('Retry-After is honoured as sent, and refused when too long', () => {
  assert.equal(retryDelay(1, 429, 7, 2, 30), 7);
  assert.equal(retryDelay(1, 429, 31, 2, 30), undefined);
  assert.equal(parseRetryAfter('3'), 3);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2026-12-01T12:00:00Z');
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 12:00:30 GMT', now), 30);
});

test('backoff without Retry-After is exponential with jitter', () => {
  const low = [1, 2, 3, 4].map((n) => retryDelay(n, 503, undefined, 9, 60, () => 0));
  const high = [1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, 503, undefined, 9, 60, () => 1));
  assert.deepEqual(low, [0.25, 0.5, 1, 2]);
  assert.deepEqual(high, [0.5, 1, 2, 4, 8, 8]);
});

test('base URLs are normalised to the API root', () => {
  assert.equal(resolveBaseUrl('http://h:1'), 'http://h:1/v1');
  assert.equal(resolveBaseUrl('http://h:1/v1/'), 'http://h:1/v1');
  assert.equal(resolveBaseUrl('http://h:1/v1/ai'), 'http://h:1/v1');
});

test('every error code of the contract has its class', () => {
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), [...openapi.components.schemas.ErrorCode.enum].sort());
  const envelope = (code) => ({ error: { code, message: 'm', details: { a: 1 }, timestamp: '', request_id: 'req_1' } });
  const missing = errorFor(404, envelope('MODEL_NOT_FOUND'));
  assert.ok(missing instanceof ModelNotFoundError && missing instanceof NotFoundError);
  assert.deepEqual([missing.code, missing.details, missing.requestId], ['MODEL_NOT_FOUND', { a: 1 }, 'req_1']);
  assert.ok(errorFor(429, envelope('SOMETHING_NEW')) instanceof RateLimitError);
});

const SECRET = 'a-long-random-shared-secret';

function delivery(stamp, data = { model_id: 'm', processing_time_ms: 150.0 }) {
  // What the server sends: canonical JSON (sorted keys, no spaces) with its signature.
  const unsigned = `{"data":${JSON.stringify(data)},"event_type":"inference_completed","timestamp":"2026-12-01T12:00:00Z"}`;
  const signature = `sha256=${createHmac('sha256', SECRET).update(unsigned).digest('hex')}`;
  const body = unsigned.replace(',"timestamp"', `,"signature":"${signature}","timestamp"`);
  const mac = createHmac('sha256', SECRET).update(`evt_1.${stamp}.${body}`).digest('base64');
  return { headers: { 'webhook-id': 'evt_1', 'webhook-timestamp': String(stamp), 'webhook-signature': `v1,${mac}` }, body };
}

test('the webhook verifier accepts a genuine delivery and rejects forgeries and replays', async () => {
  const { headers, body } = delivery(1_800_000_000);
  const payload = await verifyWebhook(SECRET, headers, body, { now: 1_800_000_010 });
  assert.equal(payload.event_type, 'inference_completed');
  assert.deepEqual(payload.data, { model_id: 'm', processing_time_ms: 150 });
  await assert.rejects(verifyWebhook('another-secret-entirely', headers, body, { now: 1_800_000_010 }), WebhookVerificationError);
  await assert.rejects(verifyWebhook(SECRET, headers, body.replace('"m"', '"n"'), { now: 1_800_000_010 }), WebhookVerificationError);
  await assert.rejects(verifyWebhook(SECRET, headers, body, { now: 1_800_009_999 }), /stale/);
  // Headers re-signed over a body whose own signature is wrong.
  const forged = body.replace(/sha256=[0-9a-f]+/, `sha256=${'0'.repeat(64)}`);
  const mac = createHmac('sha256', SECRET).update(`evt_1.1800000000.${forged}`).digest('base64');
  await assert.rejects(
    verifyWebhook(SECRET, { ...headers, 'webhook-signature': `v1,${mac}` }, forged, { now: 1_800_000_010 }),
    /payload signature/,
  );
});
