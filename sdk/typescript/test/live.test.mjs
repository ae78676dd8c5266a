// The TypeScript SDK against a live `ai-ide serve` (started by
// tests/sdk/test_typescript_sdk.py, which sets AI_IDE_BASE_URL and AI_IDE_API_KEY).
// The server allows one inference at a time, so holding a stream open makes
// the next inference a 429 with Retry-After.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { describe, test } from 'node:test';

import {
  AIIDE, APIConnectionError, APITimeoutError, CompletionStream, ModelNotFoundError, NotFoundError, RateLimitError,
  UnauthorizedError, WebhookVerificationError,
} from '@ai-ide/sdk';

const BASE_URL = process.env.AI_IDE_BASE_URL;
const API_KEY = process.env.AI_IDE_API_KEY;
const MODEL = process.env.AI_IDE_TEST_MODEL ?? 'tiny-qwen';
const LONG_MODEL = process.env.AI_IDE_TEST_LONG_MODEL ?? 'tiny-codellama';
const skip = !BASE_URL || !API_KEY ? 'needs a live server: run pytest tests/sdk/test_typescript_sdk.py' : false;
// Greedy: a sampled run can end early, and the long one must hold its slot.
// The code is the one the runner found to complete at length on this machine
// (tests/support/live_server.py: find_long_code).
const LONG_CODE = process.env.AI_IDE_TEST_LONG_CODE ?? 'def f():\n    return ';
const LONG = { model_id: LONG_MODEL, context: { code: LONG_CODE }, parameters: { max_tokens: 1900, stop_sequences: [], temperature: 0.0 } };

const client = () => new AIIDE({ apiKey: API_KEY, baseUrl: BASE_URL });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function inferenceCount(sdk, model) {
  return (await sdk.ai.monitoring.metrics(model)).metrics.inference_count;
}

async function waitFor(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('live server', { skip }, () => {
  test('the documented TypeScript example runs', () => {
    const source = readFileSync(new URL('../../examples/documented-example.mjs', import.meta.url), 'utf8')
      .replace("'your-api-key'", JSON.stringify(API_KEY))
      .replace("'https://api.rust-ai-ide.dev/v1'", JSON.stringify(BASE_URL));
    // Beside test/, not in it: node --test would take a file left in test/ for a test.
    const dir = new URL('../.generated/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL('documented-example.mjs', dir);
    writeFileSync(file, source);
    const run = spawnSync(process.execPath, [file.pathname], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.stdout.length > 1, 'the example printed the completion');
  });

  test('completions are typed and accept either spelling', async () => {
    const sdk = client();
    const snake = await sdk.ai.inference.completion({ model_id: MODEL, context: { code: 'x = ', cursor_position: 4 }, parameters: { max_tokens: 4 } });
    const camel = await sdk.ai.inference.completion({ modelId: MODEL, context: { code: 'x = ', cursorPosition: 4 }, parameters: { maxTokens: 4 } });
    for (const result of [snake, camel]) {
      assert.equal(result.completion.metadata.model_used, MODEL);
      assert.ok(result.completion.metadata.completion_tokens > 0 && result.completion.metadata.completion_tokens <= 4);
      assert.equal(result.text, result.completion.text);
      assert.ok(result.completion.metadata.timings.total_ms > 0);
    }
    assert.ok(!Object.keys(snake).includes('text'), 'the shortcut is not part of the JSON');
  });

  test('a stream yields token events, then the full response', async () => {
    const stream = await client().ai.inference.completion({ model_id: MODEL, context: { code: 'def f(x):\n    return ' }, parameters: { max_tokens: 10 } }, { stream: true });
    assert.ok(stream instanceof CompletionStream);
    const tokens = [];
    for await (const event of stream) tokens.push(event.text);
    assert.ok(tokens.length > 0);
    assert.ok(stream.completion);
    assert.ok(tokens.length <= stream.completion.completion.metadata.completion_tokens);
    assert.equal(stream.completion.text, stream.completion.completion.text);
  });

  test('closing a stream stops the generation on the server', async () => {
    const sdk = client();
    await sdk.ai.inference.completion({ model_id: LONG_MODEL, context: { code: 'x' }, parameters: { max_tokens: 1 } });
    const before = await waitFor('a recorded inference', async () => (await inferenceCount(sdk, LONG_MODEL)) || false);
    const stream = await sdk.ai.inference.completion(LONG, { stream: true });
    let received = 0;
    for await (const _ of stream) {
      received += 1;
      if (received === 3) break; // leaving the loop closes the stream
    }
    assert.equal(stream.completion, undefined);
    // The server stops decoding, and never records the cancelled generation:
    // a one-token completion afterwards is the only new inference.
    await waitFor('the server to go idle', async () => (await sdk.ai.health()).services.inference_engine.active_requests === 0);
    await sdk.ai.inference.completion({ model_id: LONG_MODEL, context: { code: 'y' }, parameters: { max_tokens: 1 } });
    await waitFor('the new record', async () => (await inferenceCount(sdk, LONG_MODEL)) >= before + 1);
    await sleep(500);
    assert.equal(await inferenceCount(sdk, LONG_MODEL), before + 1);
  });

  test('a 429 is retried after the server\'s Retry-After', async () => {
    const holder = await client().ai.inference.completion(LONG, { stream: true });
    const events = holder[Symbol.asyncIterator]();
    await events.next();
    const retries = [];
    const sdk = new AIIDE({
      apiKey: API_KEY, baseUrl: BASE_URL,
      onRetry: (info) => { retries.push(info); void holder.close(); },
    });
    const started = Date.now();
    const result = await sdk.ai.inference.completion({ model_id: MODEL, context: { code: 'x = ' }, parameters: { max_tokens: 2 } });
    assert.ok(result.completion.metadata.completion_tokens > 0);
    assert.ok(retries.length >= 1);
    assert.equal(retries[0].status, 429);
    assert.equal(retries[0].code, 'RATE_LIMIT_EXCEEDED');
    assert.ok(retries[0].retryAfter >= 1);
    assert.equal(retries[0].delaySeconds, retries[0].retryAfter);
    assert.ok(Date.now() - started >= retries[0].retryAfter * 1000);
  });

  test('without retries a 429 throws RateLimitError with the envelope', async () => {
    const holder = await client().ai.inference.completion(LONG, { stream: true });
    await holder[Symbol.asyncIterator]().next();
    try {
      await assert.rejects(
        client().withOptions({ maxRetries: 0 }).ai.inference.completion({ model_id: MODEL, context: { code: 'x' } }),
        (error) => {
          assert.ok(error instanceof RateLimitError);
          assert.equal(error.status, 429);
          assert.equal(error.details.policy, 'concurrency');
          assert.equal(error.retryAfter, error.details.retry_after_seconds);
          assert.match(error.requestId, /^req_/);
          return true;
        },
      );
    } finally {
      await holder.close();
    }
  });

  test('each error code throws its own class', async () => {
    const sdk = client();
    await assert.rejects(sdk.ai.inference.completion({ modelId: 'no-such-model', context: { code: 'x' } }), (error) => {
      assert.ok(error instanceof ModelNotFoundError && error instanceof NotFoundError);
      assert.ok(error.details.available_models.includes(MODEL));
      return true;
    });
    await assert.rejects(new AIIDE({ apiKey: 'wrong', baseUrl: BASE_URL }).ai.health(), UnauthorizedError);
    await assert.rejects(sdk.ai.jobs.get('job_missing'), NotFoundError);
  });

  test('pagination, models, jobs, batch and metrics', async () => {
    const sdk = client();
    const all = await sdk.ai.models.list({ limit: 1000 });
    const paged = [];
    for await (const model of sdk.ai.models.iter(2)) paged.push(model.id);
    assert.deepEqual(paged, all.models.map((m) => m.id));
    assert.ok(paged.length > 2 && all.pagination.total_count === paged.length);
    const accepted = await sdk.ai.inference.completion({ model_id: MODEL, context: { code: 'z = ' }, parameters: { max_tokens: 2 } }, { background: true });
    const job = await sdk.ai.jobs.wait(accepted.job_id, { maxWaitMs: 60_000 });
    assert.equal(job.status, 'completed');
    assert.equal(job.result.completion.metadata.model_used, MODEL);
    const batch = await sdk.ai.batch.inference({ requests: [{ id: 'a', modelId: MODEL, type: 'completion', context: { code: 'a = ' }, parameters: { maxTokens: 2 } }] });
    assert.equal(batch.status, 'completed');
    assert.deepEqual(batch.results.map((r) => r.request_id), ['a']);
    assert.ok((await sdk.ai.monitoring.metrics(MODEL)).metrics.inference_count > 0);
    assert.match(await sdk.ai.monitoring.prometheus(), /ai_ide_inferences_total/);
  });

  test('a real webhook delivery verifies', async () => {
    const deliveries = [];
    const receiver = createServer((request, response) => {
      const chunks = [];
      request.on('data', (c) => chunks.push(c));
      request.on('end', () => {
        deliveries.push({ headers: request.headers, body: Buffer.concat(chunks) });
        response.end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const sdk = client();
    const secret = 'a-long-random-shared-secret';
    try {
      const hook = await sdk.ai.webhooks.create({ url: `http://127.0.0.1:${receiver.address().port}/hook`, events: ['inference_completed'], secret });
      await sdk.ai.inference.completion({ model_id: MODEL, context: { code: 'w = ' }, parameters: { max_tokens: 2 } });
      await waitFor('a delivery', async () => deliveries.length > 0, 20_000);
      const { headers, body } = deliveries[0];
      const payload = await sdk.ai.webhooks.verify(secret, headers, new Uint8Array(body));
      assert.equal(payload.event_type, 'inference_completed');
      assert.equal(payload.data.model_id, MODEL);
      await assert.rejects(sdk.ai.webhooks.verify('another-secret-entirely', headers, new Uint8Array(body)), WebhookVerificationError);
      await sdk.ai.webhooks.delete(hook.id);
      await assert.rejects(sdk.ai.webhooks.get(hook.id), NotFoundError);
    } finally {
      receiver.close();
    }
  });

  test('a silent server times out', async () => {
    const silent = createTcpServer(() => {});
    await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const sdk = new AIIDE({ apiKey: 'k', baseUrl: `http://127.0.0.1:${silent.address().port}`, timeout: 300 });
      await assert.rejects(sdk.ai.health(), APITimeoutError);
    } finally {
      silent.close();
    }
  });

  test('a refused connection is retried until the server listens', async () => {
    // A port with nothing on it (a server restarting); the first retry starts
    // a relay there to the live server.
    const port = await freePort();
    const target = new URL(BASE_URL);
    const retries = [];
    let relay;
    const onRetry = (info) => {
      retries.push(info);
      relay ??= createTcpServer((socket) => {
        const upstream = connect(Number(target.port), target.hostname);
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      }).listen(port, '127.0.0.1');
    };
    try {
      const sdk = new AIIDE({ apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}/v1`, onRetry });
      const health = await sdk.ai.health();
      assert.ok(['healthy', 'degraded'].includes(health.status));
      assert.deepEqual(retries.map((r) => [r.attempt, r.status, r.code]), [[1, 0, undefined]]);
      assert.ok(retries[0].delaySeconds >= 0.25 && retries[0].delaySeconds <= 0.5);
    } finally {
      relay?.close();
    }
  });

  test('a server that never listens throws once the retries are spent', async () => {
    const retries = [];
    const sdk = new AIIDE({ apiKey: 'k', baseUrl: `http://127.0.0.1:${await freePort()}/v1`, onRetry: (info) => retries.push(info) });
    await assert.rejects(sdk.ai.health(), APIConnectionError);
    assert.deepEqual(retries.map((r) => [r.attempt, r.status]), [[1, 0], [2, 0]]);
  });
});

async function freePort() {
  const probe = createTcpServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
