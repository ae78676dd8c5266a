/**
 * TypeScript SDK of the ai-ide AI Services API, for Node 20+ and browsers (on `fetch`).
 *
 * The request and response types are generated from the committed OpenAPI
 * document (`src/generated/openapi.ts`, `npm run generate`), which the server
 * generates from its wire contract.
 */
import type { components } from './generated/openapi.js';
import { type Input, toWire } from './case.js';
import {
  APIConnectionError,
  APIStatusError,
  APITimeoutError,
  type ErrorEnvelope,
  StreamEndedError,
  errorFor,
} from './errors.js';
import { type VerifyOptions, type WebhookPayload, verifyWebhook } from './webhooks.js';

export * from './errors.js';
export type { Camelize, Input } from './case.js';
export { WebhookVerificationError, verifyWebhook } from './webhooks.js';
export type { VerifyOptions, WebhookPayload } from './webhooks.js';
export type { components, paths } from './generated/openapi.js';

export type Schemas = components['schemas'];
export type CompletionRequest = Schemas['CompletionRequestBody'];
export type GenerationRequest = Schemas['GenerationRequestBody'];
export type RefactorRequest = Schemas['RefactorRequestBody'];
export type OrchestrationRequest = Schemas['OrchestrationRequestBody'];
export type BatchRequest = Schemas['BatchRequestBody'];
export type LoadRequest = Schemas['LoadRequest'];
export type CreateWebhook = Schemas['CreateWebhook'];
export type TokenEvent = Schemas['TokenEvent'];
export type ModelEntry = Schemas['ModelEntry'];
export type ModelList = Schemas['ModelList'];
export type JobAccepted = Schemas['JobAccepted'];
export type JobStatus = Schemas['JobStatusResponse'];
export type BatchResponse = Schemas['BatchResponse'];
export type HealthResponse = Schemas['HealthResponse'];
export type ModelMetrics = Schemas['ModelMetricsResponse'];
export type WebhookEntry = Schemas['WebhookEntry'];
export type DeliveryEntry = Schemas['DeliveryEntry'];
export type DeliveryStatus = DeliveryEntry['status'];

/** `POST /inference/completion`'s answer, with `text` as a shortcut for `completion.text`. */
export type CompletionResult = Schemas['CompletionResponse'] & { readonly text: string };
/** `POST /inference/generation`'s answer, with `text` for `generation.text`. */
export type GenerationResult = Schemas['GenerationResponse'] & { readonly text: string };
/** `POST /inference/refactor`'s answer, with `refactoredCode` for `refactoring.refactored_code`. */
export type RefactorResult = Schemas['RefactorResponse'] & { readonly refactoredCode: string };

export const DEFAULT_BASE_URL = 'http://127.0.0.1:8765/v1';
const RETRYABLE = new Set([429, 503]);
const BACKOFF_INITIAL_SECONDS = 0.5;
const BACKOFF_MAX_SECONDS = 8;

/** Passed to `onRetry` before the client waits and tries again. */
export interface RetryInfo {
  attempt: number; // 1 for the first retry
  delaySeconds: number;
  status: number; // 0: the connection could not be opened (no answer at all)
  code: string | undefined;
  retryAfter: number | undefined; // what the server asked for
}

export interface ClientOptions {
  /** Default: `AI_IDE_API_KEY`, then (Node) the local server's key file. */
  apiKey?: string | undefined;
  /** A JWT sent as `Authorization: Bearer` (default `AI_IDE_TOKEN`). */
  bearerToken?: string | undefined;
  /** The API root ending in `/v1` (default `AI_IDE_BASE_URL`, else http://127.0.0.1:8765/v1). */
  baseUrl?: string | undefined;
  /** Milliseconds per attempt (for a stream: between two events); default 120000. */
  timeout?: number;
  /** Retries of 429 and 503 answers (default 2). */
  maxRetries?: number;
  /** A longer `Retry-After` (seconds) is not waited for: the error is thrown (default 60). */
  maxRetryAfter?: number;
  onRetry?: (info: RetryInfo) => void;
  headers?: Record<string, string>;
  /** Another `fetch` (default: the global one). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  options?: RequestOptions | undefined;
}

type Env = Record<string, string | undefined>;
interface NodeLike {
  env?: Env;
  getBuiltinModule?: (name: string) => unknown;
}

function nodeProcess(): NodeLike | undefined {
  return (globalThis as { process?: NodeLike }).process;
}

function env(name: string): string | undefined {
  return nodeProcess()?.env?.[name] || undefined;
}

/** The key file a local server writes on first start (Node only): `<data_dir>/api-key`. */
export function keyFileKey(): string | undefined {
  const fs = nodeProcess()?.getBuiltinModule?.('node:fs') as
    | { readFileSync(path: string, encoding: 'utf8'): string }
    | undefined;
  if (!fs) return undefined;
  const home = env('HOME') ?? '';
  const dataDir = env('AI_IDE_DATA_DIR') ?? `${env('XDG_DATA_HOME') ?? `${home}/.local/share`}/ai-ide`;
  try {
    return fs.readFileSync(`${dataDir}/api-key`, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The API root ending in `/v1` (`http://host:port` and `.../v1/ai` are accepted). */
export function resolveBaseUrl(baseUrl?: string): string {
  const url = new URL((baseUrl ?? env('AI_IDE_BASE_URL') ?? DEFAULT_BASE_URL).replace(/\/+$/, ''));
  let path = url.pathname.replace(/\/+$/, '');
  if (path.endsWith('/v1/ai')) path = path.slice(0, -3);
  else if (!path.endsWith('/v1')) path = `${path}/v1`;
  return `${url.origin}${path}`;
}

/** Seconds from a `Retry-After` header (delta seconds or an HTTP date). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value.trim());
  if (value.trim() !== '' && Number.isFinite(seconds)) return Math.max(0, seconds);
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - now) / 1000);
}

/**
 * Seconds to wait before retry `attempt` (1-based), or undefined: do not retry.
 * Only 429 and 503 are retried; a `Retry-After` is honoured as sent; without
 * one the wait is exponential with jitter (half fixed, half random).
 */
export function retryDelay(
  attempt: number, status: number, retryAfter: number | undefined,
  maxRetries: number, maxRetryAfter: number, random: () => number = Math.random,
): number | undefined {
  if (!RETRYABLE.has(status) || attempt > maxRetries) return undefined;
  if (retryAfter !== undefined) return retryAfter <= maxRetryAfter ? retryAfter : undefined;
  const ceiling = Math.min(BACKOFF_MAX_SECONDS, BACKOFF_INITIAL_SECONDS * 2 ** (attempt - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

/**
 * Seconds before retry `attempt` of a call whose connection could not be
 * opened, or undefined once the retries are spent. The server never saw the
 * request (refused, unreachable: a server restarting), so any call may be
 * sent again, after the same backoff as a 503 without `Retry-After`.
 */
export function connectRetryDelay(
  attempt: number, maxRetries: number, random: () => number = Math.random,
): number | undefined {
  return attempt > maxRetries ? undefined : retryDelay(attempt, 503, undefined, maxRetries, 0, random);
}

// Node's fetch (undici) says why a connection failed in `cause.code`; these
// codes mean that nothing was sent. A browser's fetch does not say: no retry.
const NOT_CONNECTED_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

function notConnected(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' && NOT_CONNECTED_CODES.has(cause.code);
}

async function envelopeOf(response: Response): Promise<ErrorEnvelope> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as ErrorEnvelope;
    if (parsed && typeof parsed.error?.code === 'string') return parsed;
  } catch {
    // not JSON: wrapped below
  }
  return {
    error: {
      code: 'HTTP_ERROR',
      message: `HTTP ${response.status}${text ? `: ${text.slice(0, 500)}` : ''}`,
      details: {},
      timestamp: '',
      request_id: response.headers.get('X-Request-ID') ?? '',
    },
  };
}

function sleep(seconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** An abort signal that fires on the caller's signal or after `ms` of silence (reset by `touch`). */
class Deadline {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  timedOut = false;

  constructor(private readonly ms: number, outer?: AbortSignal) {
    outer?.addEventListener('abort', () => this.controller.abort(outer.reason), { once: true });
    this.touch();
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new APITimeoutError(`no answer within ${this.ms} ms`));
    }, this.ms);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

function withShortcut<T extends object, K extends string>(body: T, key: K, get: (b: T) => string): T & { readonly [P in K]: string } {
  Object.defineProperty(body, key, { get: () => get(body), enumerable: false });
  return body as T & { readonly [P in K]: string };
}

/** Token events of a streamed completion; `close()` stops the generation on the server. */
export class CompletionStream implements AsyncIterable<TokenEvent> {
  /** The full response (the `done` event), once the stream has ended. */
  completion: CompletionResult | undefined;
  private readonly events: AsyncGenerator<TokenEvent, void, undefined>;

  constructor(readonly response: Response, private readonly deadline: Deadline) {
    this.events = this.iterate();
  }

  private async *iterate(): AsyncGenerator<TokenEvent, void, undefined> {
    const body = this.response.body;
    if (!body) throw new StreamEndedError('the answer has no body');
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = 'message';
    let data: string[] = [];
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<string>;
        try {
          chunk = await reader.read();
        } catch (error) {
          throw this.deadline.timedOut
            ? new APITimeoutError('the stream went silent')
            : new APIConnectionError(String(error));
        }
        if (chunk.done) break;
        this.deadline.touch();
        buffer += chunk.value;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, '');
          buffer = buffer.slice(newline + 1);
          if (line === '') {
            if (data.length) {
              const parsed: unknown = JSON.parse(data.join('\n'));
              if (event === 'token') yield parsed as TokenEvent;
              else if (event === 'done') {
                this.completion = withShortcut(parsed as Schemas['CompletionResponse'], 'text', (b) => b.completion.text);
                return;
              } else if (event === 'error') {
                const envelope = parsed as ErrorEnvelope;
                throw errorFor(ERROR_STATUS[envelope.error.code] ?? 500, envelope);
              }
            }
            event = 'message';
            data = [];
          } else if (line.startsWith(':')) {
            // a comment (keep-alive)
          } else {
            const colon = line.indexOf(':');
            const name = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (name === 'event') event = value;
            else if (name === 'data') data.push(value);
          }
        }
      }
      throw new StreamEndedError('the stream ended without a done event');
    } finally {
      this.deadline.clear();
      await reader.cancel().catch(() => undefined);
      this.deadline.controller.abort();
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<TokenEvent, void, undefined> {
    return this.events;
  }

  /** Read the rest of the stream and return the full response. */
  async final(): Promise<CompletionResult> {
    for await (const _ of this.events) {
      // drained
    }
    if (!this.completion) throw new StreamEndedError('the stream ended without a done event');
    return this.completion;
  }

  /** Close the connection: the server cancels the generation. */
  async close(): Promise<void> {
    await this.events.return(undefined);
    this.deadline.clear();
    this.deadline.controller.abort();
  }
}

// Status of an error code inside a stream (the README's error table).
const ERROR_STATUS: Record<string, number> = {
  INFERENCE_FAILED: 500, MODEL_CRASHED: 503, INFERENCE_TIMEOUT: 504, REQUEST_CANCELLED: 499,
  QUEUE_FULL: 503, MODEL_LOADING: 503, MODEL_LOAD_FAILED: 503, INTERNAL_ERROR: 500,
};

/** A client of the AI Services API. */
export class AIIDE {
  readonly baseUrl: string;
  readonly ai: AI;
  private readonly apiKey: string | undefined;
  private readonly bearerToken: string | undefined;
  private readonly timeout: number;
  private readonly maxRetries: number;
  private readonly maxRetryAfter: number;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;
  private readonly headers: Record<string, string>;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = resolveBaseUrl(options.baseUrl);
    this.apiKey = options.apiKey ?? env('AI_IDE_API_KEY') ?? keyFileKey();
    this.bearerToken = options.bearerToken ?? env('AI_IDE_TOKEN');
    this.timeout = options.timeout ?? 120_000;
    this.maxRetries = options.maxRetries ?? 2;
    this.maxRetryAfter = options.maxRetryAfter ?? 60;
    this.onRetry = options.onRetry;
    this.headers = options.headers ?? {};
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.ai = new AI(this);
  }

  /** A client with some options changed. */
  withOptions(options: ClientOptions): AIIDE {
    return new AIIDE({
      apiKey: this.apiKey, bearerToken: this.bearerToken, baseUrl: this.baseUrl,
      timeout: this.timeout, maxRetries: this.maxRetries, maxRetryAfter: this.maxRetryAfter,
      ...(this.onRetry ? { onRetry: this.onRetry } : {}), headers: this.headers, fetch: this.fetchImpl,
      ...options,
    });
  }

  /** @internal Send with retries; resolves to a successful, unread answer. */
  async send(call: Call): Promise<{ response: Response; deadline: Deadline }> {
    const url = new URL(this.baseUrl + call.path);
    for (const [key, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { ...this.headers, ...(call.options?.headers ?? {}) };
    if (this.apiKey) headers['X-API-Key'] = this.apiKey;
    if (this.bearerToken) headers.Authorization = `Bearer ${this.bearerToken}`;
    if (call.body !== undefined) headers['Content-Type'] = 'application/json';
    const body = call.body === undefined ? undefined : JSON.stringify(toWire(call.body));
    for (let attempt = 1; ; attempt += 1) {
      const deadline = new Deadline(this.timeout, call.options?.signal);
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          method: call.method, headers, ...(body === undefined ? {} : { body }),
          signal: deadline.controller.signal,
        });
      } catch (error) {
        deadline.clear();
        if (deadline.timedOut) throw new APITimeoutError(`${call.method} ${call.path}: no answer within ${this.timeout} ms`);
        if (call.options?.signal?.aborted) throw error;
        const delay = notConnected(error) ? connectRetryDelay(attempt, this.maxRetries) : undefined;
        if (delay === undefined) throw new APIConnectionError(`${call.method} ${call.path}: ${String(error)}`);
        this.onRetry?.({ attempt, delaySeconds: delay, status: 0, code: undefined, retryAfter: undefined });
        await sleep(delay, call.options?.signal);
        continue;
      }
      if (response.ok) return { response, deadline };
      const envelope = await envelopeOf(response);
      deadline.clear();
      const retryAfter = parseRetryAfter(response.headers.get('Retry-After'));
      const delay = retryDelay(attempt, response.status, retryAfter, this.maxRetries, this.maxRetryAfter);
      const error = errorFor(response.status, envelope, retryAfter);
      if (delay === undefined) throw error;
      this.onRetry?.({ attempt, delaySeconds: delay, status: response.status, code: error.code, retryAfter });
      await sleep(delay, call.options?.signal);
    }
  }

  /** @internal */
  async json<T>(call: Call): Promise<T> {
    const { response, deadline } = await this.send(call);
    try {
      const text = await response.text();
      return (text ? JSON.parse(text) : undefined) as T;
    } finally {
      deadline.clear();
    }
  }

  /** @internal */
  async text(call: Call): Promise<string> {
    const { response, deadline } = await this.send(call);
    try {
      return await response.text();
    } finally {
      deadline.clear();
    }
  }

  /** @internal */
  async stream(call: Call): Promise<CompletionStream> {
    const { response, deadline } = await this.send(call);
    return new CompletionStream(response, deadline);
  }
}

const segment = (id: string): string => encodeURIComponent(id);

async function* pages<P extends { pagination: Schemas['Pagination'] }, T>(
  fetchPage: (limit: number, offset: number) => Promise<P>, items: (page: P) => T[], pageSize: number,
): AsyncGenerator<T, void, undefined> {
  for (let offset = 0; ;) {
    const page = await fetchPage(pageSize, offset);
    const batch = items(page);
    yield* batch;
    if (!page.pagination.has_more || batch.length === 0) return;
    offset += batch.length;
  }
}

async function poll<T>(get: () => Promise<T>, done: (value: T) => boolean, maxWaitMs: number, intervalMs: number, what: string): Promise<T> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new APITimeoutError(`${what} not finished after ${maxWaitMs} ms`);
    await sleep(intervalMs / 1000);
  }
}

function withOptionFlags<T>(body: Input<T>, flags: Record<string, boolean>): Input<T> {
  const record = body as Record<string, unknown>;
  return { ...record, options: { ...((record.options as Record<string, unknown>) ?? {}), ...flags } } as Input<T>;
}

export interface WaitOptions {
  maxWaitMs?: number;
  pollIntervalMs?: number;
}

/** `client.ai.models`. */
export class Models {
  constructor(private readonly client: AIIDE) {}

  /** One page of the catalog with live status. */
  list(query: { limit?: number; offset?: number } = {}, options?: RequestOptions): Promise<ModelList> {
    return this.client.json({ method: 'GET', path: '/ai/models', query, options });
  }

  /** Every model, page after page (`for await`). */
  iter(pageSize = 100): AsyncGenerator<ModelEntry, void, undefined> {
    return pages((limit, offset) => this.list({ limit, offset }), (p) => p.models, pageSize);
  }

  /** One model's entry (NotFoundError-free: undefined when the catalog has no such id). */
  async get(modelId: string): Promise<ModelEntry | undefined> {
    for await (const model of this.iter()) if (model.id === modelId) return model;
    return undefined;
  }

  /** Queue a load. */
  load(modelId: string, body: Input<LoadRequest> = {}, options?: RequestOptions): Promise<Schemas['LoadResponse']> {
    return this.client.json({ method: 'POST', path: `/ai/models/${segment(modelId)}/load`, body, options });
  }

  /** Poll until the model is no longer `loading`. */
  async waitUntilLoaded(modelId: string, wait: WaitOptions = {}): Promise<ModelEntry> {
    const model = await poll(() => this.get(modelId), (m) => m === undefined || m.status !== 'loading',
      wait.maxWaitMs ?? 300_000, wait.pollIntervalMs ?? 250, `model ${modelId}`);
    if (!model) throw new StreamEndedError(`model ${modelId} is not in the catalog`);
    return model;
  }

  /** Free a model's memory. */
  unload(modelId: string, options?: RequestOptions): Promise<Schemas['UnloadResponse']> {
    return this.client.json({ method: 'POST', path: `/ai/models/${segment(modelId)}/unload`, options });
  }
}

export interface CompletionCallOptions extends RequestOptions {
  stream?: boolean;
  background?: boolean;
}

/** `client.ai.inference`. */
export class Inference {
  constructor(private readonly client: AIIDE) {}

  /**
   * Complete code at a cursor. `{ stream: true }` resolves to a `CompletionStream`
   * of token events; `{ background: true }` to a job (see `client.ai.jobs.wait`).
   */
  completion(body: Input<CompletionRequest>, options: CompletionCallOptions & { stream: true }): Promise<CompletionStream>;
  completion(body: Input<CompletionRequest>, options: CompletionCallOptions & { background: true }): Promise<JobAccepted>;
  completion(body: Input<CompletionRequest>, options?: CompletionCallOptions): Promise<CompletionResult>;
  async completion(body: Input<CompletionRequest>, options: CompletionCallOptions = {}): Promise<CompletionStream | JobAccepted | CompletionResult> {
    const call: Call = { method: 'POST', path: '/ai/inference/completion', options };
    if (options.stream) return this.client.stream({ ...call, body: withOptionFlags(body, { stream: true }) });
    if (options.background) return this.client.json<JobAccepted>({ ...call, body: withOptionFlags(body, { async: true }) });
    const result = await this.client.json<Schemas['CompletionResponse']>({ ...call, body });
    return withShortcut(result, 'text', (b) => b.completion.text);
  }

  /** Generate code from a description. */
  generation(body: Input<GenerationRequest>, options: RequestOptions & { background: true }): Promise<JobAccepted>;
  generation(body: Input<GenerationRequest>, options?: RequestOptions & { background?: boolean }): Promise<GenerationResult>;
  async generation(body: Input<GenerationRequest>, options: RequestOptions & { background?: boolean } = {}): Promise<GenerationResult | JobAccepted> {
    const call: Call = { method: 'POST', path: '/ai/inference/generation', options };
    if (options.background) return this.client.json<JobAccepted>({ ...call, body: withOptionFlags(body, { async: true }) });
    const result = await this.client.json<Schemas['GenerationResponse']>({ ...call, body });
    return withShortcut(result, 'text', (b) => b.generation.text);
  }

  /** Refactor with safety checks. */
  refactor(body: Input<RefactorRequest>, options: RequestOptions & { background: true }): Promise<JobAccepted>;
  refactor(body: Input<RefactorRequest>, options?: RequestOptions & { background?: boolean }): Promise<RefactorResult>;
  async refactor(body: Input<RefactorRequest>, options: RequestOptions & { background?: boolean } = {}): Promise<RefactorResult | JobAccepted> {
    const call: Call = { method: 'POST', path: '/ai/inference/refactor', options };
    if (options.background) return this.client.json<JobAccepted>({ ...call, body: withOptionFlags(body, { async: true }) });
    const result = await this.client.json<Schemas['RefactorResponse']>({ ...call, body });
    return withShortcut(result, 'refactoredCode', (b) => b.refactoring.refactored_code);
  }
}

/** `client.ai.orchestration`. */
export class Orchestration {
  constructor(private readonly client: AIIDE) {}

  /** Run one task on several models and choose. */
  inference(body: Input<OrchestrationRequest>, options?: RequestOptions): Promise<Schemas['OrchestrationResponse']> {
    return this.client.json({ method: 'POST', path: '/ai/orchestration/inference', body, options });
  }
}

/** `client.ai.batch`. */
export class Batch {
  constructor(private readonly client: AIIDE) {}

  /** Run many requests; `{ background: true }` answers at once (then `wait`). */
  inference(body: Input<BatchRequest>, options: RequestOptions & { background?: boolean } = {}): Promise<BatchResponse> {
    const sent = options.background ? withOptionFlags(body, { async: true }) : body;
    return this.client.json({ method: 'POST', path: '/ai/batch/inference', body: sent, options });
  }

  /** A stored batch. */
  get(batchId: string, options?: RequestOptions): Promise<BatchResponse> {
    return this.client.json({ method: 'GET', path: `/ai/batch/${segment(batchId)}`, options });
  }

  /** Poll a background batch until it finishes. */
  wait(batchId: string, wait: WaitOptions = {}): Promise<BatchResponse> {
    return poll(() => this.get(batchId), (b) => b.status !== 'running',
      wait.maxWaitMs ?? 600_000, wait.pollIntervalMs ?? 500, `batch ${batchId}`);
  }
}

/** `client.ai.jobs`. */
export class Jobs {
  constructor(private readonly client: AIIDE) {}

  /** A job's status and, once completed, the synchronous call's body. */
  get(jobId: string, options?: RequestOptions): Promise<JobStatus> {
    return this.client.json({ method: 'GET', path: `/ai/jobs/${segment(jobId)}`, options });
  }

  /** Poll until the job is completed or failed. */
  wait(jobId: string, wait: WaitOptions = {}): Promise<JobStatus> {
    return poll(() => this.get(jobId), (j) => j.status === 'completed' || j.status === 'failed',
      wait.maxWaitMs ?? 600_000, wait.pollIntervalMs ?? 500, `job ${jobId}`);
  }
}

/** `client.ai.monitoring`. */
export class Monitoring {
  constructor(private readonly client: AIIDE) {}

  /** Recorded figures of a model within [start, end] (RFC 3339). */
  metrics(modelId: string, range: { start?: string; end?: string } = {}, options?: RequestOptions): Promise<ModelMetrics> {
    return this.client.json({ method: 'GET', path: `/ai/monitoring/models/${segment(modelId)}/metrics`, query: range, options });
  }

  /** The counters in Prometheus text format. */
  prometheus(options?: RequestOptions): Promise<string> {
    return this.client.text({ method: 'GET', path: '/ai/monitoring/prometheus', options });
  }
}

/** `client.ai.webhooks`. */
export class Webhooks {
  constructor(private readonly client: AIIDE) {}

  /** Subscribe a receiver. */
  create(body: Input<CreateWebhook>, options?: RequestOptions): Promise<WebhookEntry> {
    return this.client.json({ method: 'POST', path: '/ai/webhooks/ai-events', body, options });
  }

  /** One page of your subscriptions. */
  list(query: { limit?: number; offset?: number } = {}, options?: RequestOptions): Promise<Schemas['WebhookList']> {
    return this.client.json({ method: 'GET', path: '/ai/webhooks/ai-events', query, options });
  }

  /** All your subscriptions (`for await`). */
  iter(pageSize = 100): AsyncGenerator<WebhookEntry, void, undefined> {
    return pages((limit, offset) => this.list({ limit, offset }), (p) => p.webhooks, pageSize);
  }

  /** One subscription. */
  get(webhookId: string, options?: RequestOptions): Promise<WebhookEntry> {
    return this.client.json({ method: 'GET', path: `/ai/webhooks/ai-events/${segment(webhookId)}`, options });
  }

  /** Delete a subscription with its delivery log. */
  async delete(webhookId: string, options?: RequestOptions): Promise<void> {
    await this.client.text({ method: 'DELETE', path: `/ai/webhooks/ai-events/${segment(webhookId)}`, options });
  }

  /** One page of a subscription's delivery log, newest first. */
  deliveries(webhookId: string, query: { status?: DeliveryStatus; limit?: number; offset?: number } = {}, options?: RequestOptions): Promise<Schemas['DeliveryList']> {
    return this.client.json({ method: 'GET', path: `/ai/webhooks/ai-events/${segment(webhookId)}/deliveries`, query, options });
  }

  /** The whole delivery log (`for await`). */
  iterDeliveries(webhookId: string, status?: DeliveryStatus, pageSize = 100): AsyncGenerator<DeliveryEntry, void, undefined> {
    return pages((limit, offset) => this.deliveries(webhookId, { limit, offset, ...(status ? { status } : {}) }), (p) => p.deliveries, pageSize);
  }

  /** Send a delivery again under the same event id. */
  redeliver(webhookId: string, deliveryId: string, options?: RequestOptions): Promise<DeliveryEntry> {
    return this.client.json({ method: 'POST', path: `/ai/webhooks/ai-events/${segment(webhookId)}/deliveries/${segment(deliveryId)}/redeliver`, options });
  }

  /** Check a delivery's signatures and freshness (see `verifyWebhook`). */
  verify(secret: string, headers: Headers | Record<string, string | string[] | undefined>, body: string | Uint8Array, options?: VerifyOptions): Promise<WebhookPayload> {
    return verifyWebhook(secret, headers, body, options);
  }
}

/** `client.ai`: every resource of the API. */
export class AI {
  readonly models: Models;
  readonly inference: Inference;
  readonly orchestration: Orchestration;
  readonly batch: Batch;
  readonly jobs: Jobs;
  readonly monitoring: Monitoring;
  readonly webhooks: Webhooks;

  constructor(private readonly client: AIIDE) {
    this.models = new Models(client);
    this.inference = new Inference(client);
    this.orchestration = new Orchestration(client);
    this.batch = new Batch(client);
    this.jobs = new Jobs(client);
    this.monitoring = new Monitoring(client);
    this.webhooks = new Webhooks(client);
  }

  /** Service health with CPU, memory and GPU figures. */
  health(options?: RequestOptions): Promise<HealthResponse> {
    return this.client.json({ method: 'GET', path: '/ai/health', options });
  }

  /** Shortcut for `inference.refactor`. */
  refactor(body: Input<RefactorRequest>, options?: RequestOptions): Promise<RefactorResult> {
    return this.inference.refactor(body, options);
  }
}

export { APIStatusError };
