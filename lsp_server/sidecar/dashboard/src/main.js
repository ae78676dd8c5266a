// The ai-ide dashboard: models, live charts, recent requests, a playground and
// webhooks, all read from the AI Services API (/v1/ai) with the credential the
// user pastes once. The credential stays in this tab's session storage and
// goes out as the documented header (X-API-Key, or Authorization: Bearer for
// a JWT) on every call, so the dashboard gets the same authentication and
// rate limits as any client. It polls /models and /monitoring/live.
import uPlot from "uplot";

const API = "/v1/ai";
const STORAGE_KEY = "ai-ide-credential";
const params = new URLSearchParams(location.search);
// ?poll_ms= makes the browser tests (and a curious user) poll faster.
const POLL_MS = Math.max(250, Number(params.get("poll_ms")) || 2000);
const HISTORY_SECONDS = 600; // the charts show the last ten minutes
const STATS_SECONDS = 60; // each point summarises the requests of the last minute

class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error ? body.error : null;
    super(error ? `${error.code}: ${error.message}` : `HTTP ${status}`);
    this.status = status;
    this.code = error ? error.code : null;
    this.retryAfter = null;
  }
}

function authHeaders(secret) {
  return secret.startsWith("aiide_") ? { "X-API-Key": secret } : { Authorization: `Bearer ${secret}` };
}

async function api(method, path, body) {
  const secret = sessionStorage.getItem(STORAGE_KEY) || "";
  const headers = { Accept: "application/json", ...authHeaders(secret) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    error.retryAfter = response.headers.get("Retry-After");
    if (response.status === 401) logOut("The server refused this credential.");
    throw error;
  }
  return data;
}

// -- small DOM helpers (text only: nothing from the server becomes markup) ------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (name === "className") node.className = value;
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const num = (value, digits = 0) => (value === null || value === undefined ? "—" : value.toFixed(digits));
const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "never");

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// -- login ----------------------------------------------------------------------

let timer = null;

function logOut(reason) {
  sessionStorage.removeItem(STORAGE_KEY);
  clearTimeout(timer);
  timer = null;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
}

async function logIn(secret) {
  sessionStorage.setItem(STORAGE_KEY, secret);
  try {
    await api("GET", "/health");
  } catch (error) {
    if (error.status !== 401) {
      sessionStorage.removeItem(STORAGE_KEY);
      $("login-error").textContent = `Cannot reach the server: ${error.message}`;
    }
    return;
  }
  $("login").hidden = true;
  $("login-error").textContent = "";
  $("app").hidden = false;
  $("logout").hidden = false;
  startCharts();
  refreshWebhooks();
  poll();
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const secret = $("credential").value.trim();
  $("credential").value = "";
  if (secret) logIn(secret);
});
$("logout").addEventListener("click", () => logOut(""));

// -- models ---------------------------------------------------------------------


async function loadModel(id) {
  $("models-error").textContent = "";
  try {
    await api("POST", `/models/${encodeURIComponent(id)}/load`, {});
  } catch (error) {
    $("models-error").textContent = `Load ${id}: ${error.message}`;
  }
  refreshModels();
}

async function unloadModel(id) {
  if (!window.confirm(`Unload ${id}? Requests for it will wait for a new load.`)) return;
  $("models-error").textContent = "";
  try {
    const answer = await api("POST", `/models/${encodeURIComponent(id)}/unload`);
    $("models-error").textContent = "";
    $("models").dataset.lastUnload = `${answer.model_id} freed ${num(answer.memory_freed_mb, 1)} MB`;
  } catch (error) {
    $("models-error").textContent = `Unload ${id}: ${error.message}`;
  }
  refreshModels();
}

function renderModels(models) {
  fill(
    $("models").tBodies[0],
    models.map((model) => {
      const busy = model.status === "loading" || model.status === "unloading";
      const action =
        model.status === "loaded"
          ? el("button", { type: "button", "data-action": "unload", onclick: () => unloadModel(model.id) }, "Unload")
          : el(
              "button",
              { type: "button", "data-action": "load", disabled: busy, onclick: () => loadModel(model.id) },
              "Load",
            );
      return el(
        "tr",
        { "data-model": model.id },
        el("td", {}, model.id),
        el("td", { className: `status-${model.status}`, "data-field": "status" }, model.status, model.error ? ` (${model.error})` : ""),
        el("td", { className: "num" }, model.memory_usage_mb === null ? "—" : `${num(model.memory_usage_mb, 1)} MB`),
        el("td", {}, when(model.last_used)),
        el("td", {}, el("progress", { max: "1", value: String(model.load_progress) }), ` ${num(model.load_progress * 100)}%`),
        el("td", {}, action),
      );
    }),
  );
  const select = $("play-model");
  const chosen = select.value;
  select.replaceChildren(...models.map((m) => el("option", { value: m.id }, m.id)));
  if (models.some((m) => m.id === chosen)) select.value = chosen;
}

async function refreshModels() {
  try {
    const list = await api("GET", "/models?limit=1000");
    renderModels(list.models);
  } catch (error) {
    $("models-error").textContent = `Models: ${error.message}`;
  }
}

// -- live charts ------------------------------------------------------------------

const charts = {};
// The scheduler's priority classes, in the order they run (the API's keys).
const PRIORITIES = [
  ["interactive", "queued: editor", "#c53030"],
  ["speculative", "queued: speculative", "#dd6b20"],
  ["normal", "queued: REST", "#805ad5"],
  ["batch", "queued: batch", "#718096"],
  ["warm", "queued: context warm-up", "#38a169"],
];
const history = {
  t: [], p50: [], p95: [], tps: [], hit: [], kv: [], active: [], gpuMem: [], gpuUtil: [],
  ...Object.fromEntries(PRIORITIES.map(([name]) => [`queue_${name}`, []])),
};
const queueData = () => [history.t, ...PRIORITIES.map(([name]) => history[`queue_${name}`]), history.active];

function chart(id, title, series, data) {
  const width = Math.max(320, $(id).parentElement.clientWidth || 380);
  return new uPlot(
    {
      title,
      width,
      height: 180,
      scales: { x: { time: true } },
      legend: { live: false },
      series: [{}, ...series],
      axes: [{}, { size: 50 }],
    },
    data,
    $(id),
  );
}

function startCharts() {
  if (charts.latency) return;
  const line = (label, stroke) => ({ label, stroke, width: 2, spanGaps: true, points: { show: true, size: 4 } });
  charts.latency = chart("chart-latency", "Latency (ms)", [line("p50", "#2b6cb0"), line("p95", "#c05621")], [history.t, history.p50, history.p95]);
  charts.tokens = chart("chart-tokens", "Tokens per second", [line("tokens/s", "#2f855a")], [history.t, history.tps]);
  charts.cache = chart(
    "chart-cache",
    "Cache (%)",
    [line("completion cache hits", "#6b46c1"), line("prompt tokens from KV cache", "#d69e2e")],
    [history.t, history.hit, history.kv],
  );
  charts.queue = chart(
    "chart-queue",
    "Requests",
    [...PRIORITIES.map(([, label, colour]) => line(label, colour)), line("decoding", "#2b6cb0")],
    queueData(),
  );
  charts.gpu = chart("chart-gpu", "GPU", [line("memory used (%)", "#2c7a7b"), line("utilisation (%)", "#b83280")], [history.t, history.gpuMem, history.gpuUtil]);
  $("live-window").textContent = `last ${HISTORY_SECONDS / 60} minutes; each point: requests of the last ${STATS_SECONDS} s`;
}

function percentile(sorted, fraction) {
  return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)];
}

function addPoint(live) {
  const now = Date.now() / 1000;
  const recent = live.requests.filter((r) => Date.parse(r.started_at) / 1000 >= now - STATS_SECONDS);
  const ok = recent.filter((r) => r.outcome === "success");
  const durations = ok.map((r) => r.duration_ms).sort((a, b) => a - b);
  const tokens = ok.reduce((sum, r) => sum + r.tokens, 0);
  const prompt = ok.reduce((sum, r) => sum + r.prompt_tokens, 0);
  const fromKv = ok.reduce((sum, r) => sum + r.cached_prompt_tokens, 0);
  const point = {
    p50: durations.length ? percentile(durations, 0.5) : null,
    p95: durations.length ? percentile(durations, 0.95) : null,
    tps: tokens / STATS_SECONDS,
    hit: ok.length ? (100 * ok.filter((r) => r.cached).length) / ok.length : null,
    kv: prompt ? (100 * fromKv) / prompt : null,
    ...Object.fromEntries(PRIORITIES.map(([name]) => [`queue_${name}`, live.queued_by_priority[name] ?? 0])),
    active: live.active_requests,
    gpuMem: live.gpu ? (100 * live.gpu.memory_used_mb) / live.gpu.memory_total_mb : null,
    gpuUtil: live.gpu ? live.gpu.utilization_percent : null,
  };
  history.t.push(now);
  for (const [name, value] of Object.entries(point)) history[name].push(value);
  while (history.t.length && history.t[0] < now - HISTORY_SECONDS) {
    for (const values of Object.values(history)) values.shift();
  }
  charts.latency.setData([history.t, history.p50, history.p95]);
  charts.tokens.setData([history.t, history.tps]);
  charts.cache.setData([history.t, history.hit, history.kv]);
  charts.queue.setData(queueData());
  charts.gpu.setData([history.t, history.gpuMem, history.gpuUtil]);
  $("chart-latency").parentElement.dataset.points = String(durations.length);
  document.querySelector('[data-testid="latency-now"]').textContent =
    `p50 ${num(point.p50, 1)} ms · p95 ${num(point.p95, 1)} ms over ${durations.length} requests`;
  document.querySelector('[data-testid="tokens-now"]').textContent = `${num(point.tps, 2)} tokens/s`;
  document.querySelector('[data-testid="cache-now"]').textContent =
    `completion cache hits ${num(point.hit)}% · ${fromKv} of ${prompt} prompt tokens from the KV cache`;
  document.querySelector('[data-testid="queue-now"]').textContent =
    `${live.queue_length} queued (` +
    PRIORITIES.map(([name, label]) => `${label.replace("queued: ", "")} ${live.queued_by_priority[name] ?? 0}`).join(", ") +
    `) · ${live.active_requests} decoding`;
  document.querySelector('[data-testid="gpu-now"]').textContent = live.gpu
    ? `${num(live.gpu.memory_used_mb)} of ${num(live.gpu.memory_total_mb)} MB · utilisation ${num(live.gpu.utilization_percent)}%`
    : "no NVIDIA GPU on this server";
}

function renderRequests(requests) {
  // The model's text comes only from a server run with http.dashboard_show_code.
  const withOutput = requests.some((r) => r.output !== null && r.output !== undefined);
  $("requests-output").hidden = !withOutput;
  $("requests-hint").textContent = withOutput
    ? "With the model's text: this server runs with http.dashboard_show_code on."
    : "Figures only: the server keeps no code or completions for this view (http.dashboard_show_code turns that on).";
  fill(
    $("requests").tBodies[0],
    requests.slice(0, 50).map((r) =>
      el(
        "tr",
        {},
        el("td", {}, when(r.started_at)),
        el("td", {}, r.face === "lsp" ? "LSP" : "REST"),
        el("td", {}, r.model_id),
        el("td", {}, r.kind),
        el("td", { className: "num" }, `${num(r.duration_ms, 1)} ms`),
        el("td", { className: "num" }, r.tokens),
        el("td", { className: "num" }, r.cached ? "completion cache" : `${r.cached_prompt_tokens}/${r.prompt_tokens}`),
        el("td", { className: `outcome-${r.outcome}` }, r.outcome === "success" ? "ok" : r.error_code || "error"),
        ...(withOutput ? [el("td", {}, el("code", {}, (r.output ?? "").slice(0, 200)))] : []),
      ),
    ),
  );
}

async function poll() {
  clearTimeout(timer);
  try {
    const [health, live] = await Promise.all([api("GET", "/health"), api("GET", "/monitoring/live?limit=1000")]);
    $("health").textContent = health.status;
    $("health").className = health.status;
    addPoint(live);
    renderRequests(live.requests);
    await refreshModels();
  } catch (error) {
    if (error.status === 401) return; // logged out
    $("health").textContent = `unreachable (${error.message})`;
    $("health").className = "unhealthy";
  }
  if (sessionStorage.getItem(STORAGE_KEY)) timer = setTimeout(poll, POLL_MS);
}

// -- playground -------------------------------------------------------------------

const code = $("play-code");
const showCursor = () => {
  $("play-cursor").textContent = String(code.selectionStart);
};
for (const kind of ["click", "keyup", "select", "focus"]) code.addEventListener(kind, showCursor);

$("play-run").addEventListener("click", async () => {
  const cursor = code.selectionStart;
  $("play-error").textContent = "";
  $("play-result").replaceChildren("…");
  try {
    const answer = await api("POST", "/inference/completion", {
      model_id: $("play-model").value || null,
      context: { code: code.value, cursor_position: cursor, language: $("play-language").value || null },
      parameters: { max_tokens: Number($("play-max-tokens").value) || 32 },
    });
    const meta = answer.completion.metadata;
    const [start, end] = meta.replace_range;
    $("play-result").replaceChildren(
      code.value.slice(Math.max(0, start - 400), start),
      el("span", { className: "completion", "data-testid": "completion" }, answer.completion.text),
      code.value.slice(end, end + 200),
    );
    const rows = [
      ["model", meta.model_used],
      ["total", `${num(meta.processing_time_ms, 1)} ms`],
      ["queue", `${num(meta.timings.queue_ms, 1)} ms`],
      ["prompt", `${num(meta.timings.prompt_ms, 1)} ms`],
      ["first token", `${num(meta.timings.first_token_ms, 1)} ms`],
      ["decode", `${num(meta.timings.decode_ms, 1)} ms`],
      ["tokens", `${meta.prompt_tokens} prompt (${meta.cached_prompt_tokens} from KV cache) + ${meta.completion_tokens} generated`],
      ["finish", meta.finish_reason + (meta.cached ? " (completion cache)" : "")],
    ];
    fill($("play-timings").tBodies[0], rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  } catch (error) {
    $("play-result").replaceChildren();
    const wait = error.retryAfter ? ` (retry after ${error.retryAfter} s)` : "";
    $("play-error").textContent = error.message + wait;
  }
});

// -- webhooks ---------------------------------------------------------------------

async function showDeliveries(subscription) {
  $("webhooks-error").textContent = "";
  try {
    const list = await api("GET", `/webhooks/ai-events/${encodeURIComponent(subscription)}/deliveries?limit=100`);
    $("deliveries").hidden = false;
    $("deliveries-of").textContent = subscription;
    fill(
      $("deliveries").querySelector("tbody"),
      list.deliveries.map((d) =>
        el(
          "tr",
          { "data-delivery": d.id },
          el("td", {}, d.id),
          el("td", {}, d.event_type),
          el("td", {}, d.status),
          el("td", { className: "num" }, d.attempts),
          el("td", {}, d.last_status_code ?? d.last_error ?? "—"),
          el("td", {}, when(d.created_at)),
          el(
            "td",
            {},
            el(
              "button",
              {
                type: "button",
                "data-action": "redeliver",
                onclick: async () => {
                  try {
                    await api("POST", `/webhooks/ai-events/${encodeURIComponent(subscription)}/deliveries/${encodeURIComponent(d.id)}/redeliver`);
                  } catch (error) {
                    $("webhooks-error").textContent = `Redeliver: ${error.message}`;
                  }
                  showDeliveries(subscription);
                },
              },
              "Redeliver",
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    $("webhooks-error").textContent = `Deliveries: ${error.message}`;
  }
}

async function refreshWebhooks() {
  try {
    const list = await api("GET", "/webhooks/ai-events?limit=100");
    fill(
      $("webhooks").tBodies[0],
      list.webhooks.length
        ? list.webhooks.map((w) =>
            el(
              "tr",
              { "data-webhook": w.id },
              el("td", {}, w.id),
              el("td", {}, w.url),
              el("td", {}, w.events.join(", ")),
              el("td", {}, w.active ? "yes" : `no (${w.disabled_reason || "disabled"})`),
              el("td", {}, el("button", { type: "button", onclick: () => showDeliveries(w.id) }, "Deliveries")),
            ),
          )
        : [el("tr", {}, el("td", { colspan: "5" }, "No subscriptions (POST /v1/ai/webhooks/ai-events creates one)."))],
    );
  } catch (error) {
    $("webhooks-error").textContent = `Webhooks: ${error.message}`;
  }
}

// A credential from earlier in this tab (or from the docs page) logs in at once.
const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) logIn(saved);
