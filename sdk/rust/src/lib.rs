//! Async Rust SDK of the ai-ide AI Services API, on reqwest, tokio and serde.
//!
//! ```no_run
//! # async fn run() -> Result<(), ai_ide_sdk::Error> {
//! let client = ai_ide_sdk::AIIDE::from_env()?; // AI_IDE_API_KEY or the server's key file
//! let completion = client.ai.inference().completion("gemma3-270m", "fn main() {", 12).await?;
//! println!("{}", completion.text);
//! # Ok(()) }
//! ```
//!
//! The request and response types (`types`) are generated from the committed
//! OpenAPI document by `generate_types.py`; errors carry the envelope and a
//! typed [`ErrorCode`]; 429 and 503 answers are retried (bounded) honouring
//! `Retry-After`.

pub mod error;
pub mod types;
pub mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::{ApiError, Error, ErrorCode};
pub use types::*;

pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8765/v1";
const BACKOFF_INITIAL_SECONDS: f64 = 0.5;
const BACKOFF_MAX_SECONDS: f64 = 8.0;

impl std::ops::Deref for CompletionResponse {
    type Target = CompletionBody;

    /// `completion.text` for `completion.completion.text`.
    fn deref(&self) -> &CompletionBody {
        &self.completion
    }
}

impl std::ops::Deref for GenerationResponse {
    type Target = GenerationBody;

    fn deref(&self) -> &GenerationBody {
        &self.generation
    }
}

impl std::ops::Deref for RefactorResponse {
    type Target = RefactoringBody;

    fn deref(&self) -> &RefactoringBody {
        &self.refactoring
    }
}

/// Passed to `on_retry` before the client waits and tries again.
#[derive(Debug, Clone)]
pub struct RetryInfo {
    pub attempt: u32,
    pub delay_seconds: f64,
    /// 0: the connection could not be opened (no answer at all).
    pub status: u16,
    /// The error code of the answer; empty when there was none.
    pub code: String,
    pub retry_after: Option<f64>,
}

type RetryHook = Arc<dyn Fn(&RetryInfo) + Send + Sync>;

struct Inner {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    bearer_token: Option<String>,
    timeout: Duration,
    max_retries: u32,
    max_retry_after: f64,
    on_retry: Option<RetryHook>,
}

/// A client of the AI Services API; `client.ai` holds every resource.
pub struct AIIDE {
    pub ai: AI,
}

/// Options of an [`AIIDE`] client.
pub struct Builder {
    api_key: Option<String>,
    bearer_token: Option<String>,
    base_url: Option<String>,
    timeout: Duration,
    max_retries: u32,
    max_retry_after: f64,
    on_retry: Option<RetryHook>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The key a local server wrote on first start: `<data_dir>/api-key`.
pub fn key_file_key() -> Option<String> {
    let data_dir = env("AI_IDE_DATA_DIR").unwrap_or_else(|| {
        let base = env("XDG_DATA_HOME")
            .unwrap_or_else(|| format!("{}/.local/share", env("HOME").unwrap_or_default()));
        format!("{base}/ai-ide")
    });
    let key = std::fs::read_to_string(format!("{data_dir}/api-key")).ok()?;
    Some(key.trim().to_string()).filter(|k| !k.is_empty())
}

/// The API root ending in `/v1` (`http://host:port` and `.../v1/ai` are accepted).
pub fn resolve_base_url(base_url: Option<&str>) -> String {
    let url = base_url
        .map(str::to_string)
        .or_else(|| env("AI_IDE_BASE_URL"))
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
    let url = url.trim_end_matches('/');
    if let Some(root) = url.strip_suffix("/v1/ai") {
        format!("{root}/v1")
    } else if url.ends_with("/v1") {
        url.to_string()
    } else {
        format!("{url}/v1")
    }
}

/// Seconds before retry `attempt` (1-based), or `None`: do not retry.
///
/// Only 429 and 503 are retried; `Retry-After` is honoured as sent (refused
/// over `max_retry_after`); without one the wait is exponential with jitter.
pub fn retry_delay(
    attempt: u32,
    status: u16,
    retry_after: Option<f64>,
    max_retries: u32,
    max_retry_after: f64,
    jitter: f64,
) -> Option<f64> {
    if !(status == 429 || status == 503) || attempt > max_retries {
        return None;
    }
    if let Some(seconds) = retry_after {
        return (seconds <= max_retry_after).then_some(seconds);
    }
    let ceiling = BACKOFF_MAX_SECONDS.min(BACKOFF_INITIAL_SECONDS * 2f64.powi(attempt as i32 - 1));
    Some(ceiling / 2.0 + jitter.clamp(0.0, 1.0) * ceiling / 2.0)
}

/// Seconds before retry `attempt` of a call whose connection could not be
/// opened, or `None` once the retries are spent.
///
/// The server never saw the request (refused, unreachable: a server that is
/// restarting), so any call may be sent again, after the same backoff as a
/// 503 without `Retry-After`.
pub fn connect_retry_delay(attempt: u32, max_retries: u32, jitter: f64) -> Option<f64> {
    retry_delay(attempt, 503, None, max_retries, 0.0, jitter)
}

fn jitter() -> f64 {
    // No rand crate offline: the clock's nanoseconds are random enough to de-synchronise clients.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

impl Builder {
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }

    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Per attempt; for a stream, the longest wait for the next event.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    pub fn max_retry_after(mut self, seconds: f64) -> Self {
        self.max_retry_after = seconds;
        self
    }

    pub fn on_retry(mut self, hook: impl Fn(&RetryInfo) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(hook));
        self
    }

    pub fn build(self) -> Result<AIIDE, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(self.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| Error::Connection(e.to_string()))?;
        let inner = Inner {
            http,
            base_url: resolve_base_url(self.base_url.as_deref()),
            api_key: self.api_key.or_else(|| env("AI_IDE_API_KEY")).or_else(key_file_key),
            bearer_token: self.bearer_token.or_else(|| env("AI_IDE_TOKEN")),
            timeout: self.timeout,
            max_retries: self.max_retries,
            max_retry_after: self.max_retry_after,
            on_retry: self.on_retry,
        };
        Ok(AIIDE { ai: AI { inner: Arc::new(inner) } })
    }
}

impl AIIDE {
    /// A client with this API key; the URL from `AI_IDE_BASE_URL`, else the local default.
    pub fn new(api_key: impl Into<String>) -> Result<AIIDE, Error> {
        AIIDE::builder().api_key(api_key).build()
    }

    /// A client with the key from `AI_IDE_API_KEY`, else the local server's key file.
    pub fn from_env() -> Result<AIIDE, Error> {
        AIIDE::builder().build()
    }

    pub fn builder() -> Builder {
        Builder {
            api_key: None,
            bearer_token: None,
            base_url: None,
            timeout: Duration::from_secs(120),
            max_retries: 2,
            max_retry_after: 60.0,
            on_retry: None,
        }
    }

    /// The API root, ending in `/v1`.
    pub fn base_url(&self) -> &str {
        &self.ai.inner.base_url
    }
}

fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<f64> {
    value?.to_str().ok()?.trim().parse::<f64>().ok().map(|s| s.max(0.0))
}

fn envelope_of(status: u16, body: &[u8], request_id: &str) -> ErrorEnvelope {
    serde_json::from_slice(body).unwrap_or_else(|_| ErrorEnvelope {
        error: ErrorBody {
            code: "HTTP_ERROR".into(),
            message: format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(500)])),
            details: None,
            timestamp: String::new(),
            request_id: request_id.to_string(),
        },
    })
}

fn transport(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout(error.to_string())
    } else {
        Error::Connection(error.to_string())
    }
}

impl Inner {
    /// Send with retries; a successful, unread answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, Error> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0;
        loop {
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(key) = &self.api_key {
                request = request.header("X-API-Key", key);
            }
            if let Some(token) = &self.bearer_token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let sent = tokio::time::timeout(self.timeout, request.send())
                .await
                .map_err(|_| Error::Timeout(format!("{method} {path}: no answer")))?;
            let response = match sent {
                Ok(response) => response,
                // Not sent: nothing listens (yet), so trying again does no work twice.
                Err(error) if error.is_connect() && !error.is_timeout() => {
                    attempt += 1;
                    let Some(seconds) = connect_retry_delay(attempt, self.max_retries, jitter()) else {
                        return Err(transport(error));
                    };
                    if let Some(hook) = &self.on_retry {
                        hook(&RetryInfo { attempt, delay_seconds: seconds, status: 0, code: String::new(), retry_after: None });
                    }
                    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                    continue;
                }
                Err(error) => return Err(transport(error)),
            };
            if response.status().is_success() {
                return Ok(response);
            }
            attempt += 1;
            let status = response.status().as_u16();
            let retry_after = parse_retry_after(response.headers().get("Retry-After"));
            let request_id = response
                .headers()
                .get("X-Request-ID")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let bytes = response.bytes().await.map_err(transport)?;
            let envelope = envelope_of(status, &bytes, &request_id);
            let delay = retry_delay(attempt, status, retry_after, self.max_retries, self.max_retry_after, jitter());
            let code = envelope.error.code.clone();
            match delay {
                None => {
                    return Err(Error::Api(ApiError {
                        status,
                        code: ErrorCode::parse(&code),
                        envelope,
                        retry_after,
                    }))
                }
                Some(seconds) => {
                    if let Some(hook) = &self.on_retry {
                        hook(&RetryInfo { attempt, delay_seconds: seconds, status, code, retry_after });
                    }
                    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                }
            }
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let response = self.send(method, path, query, body).await?;
        let bytes = tokio::time::timeout(self.timeout, response.bytes())
            .await
            .map_err(|_| Error::Timeout(format!("{path}: body")))?
            .map_err(transport)?;
        let bytes = if bytes.is_empty() { "null".as_bytes().to_vec() } else { bytes.to_vec() };
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode(format!("{path}: {e}")))
    }
}

fn to_value<T: Serialize>(body: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(body).map_err(|e| Error::Decode(e.to_string()))
}

fn segment(id: &str) -> String {
    // An id is one path segment: "../x" must not walk the URL.
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `client.ai`: every resource of the API.
#[derive(Clone)]
pub struct AI {
    inner: Arc<Inner>,
}

impl AI {
    pub fn models(&self) -> Models {
        Models { inner: self.inner.clone() }
    }

    pub fn inference(&self) -> Inference {
        Inference { inner: self.inner.clone() }
    }

    pub fn orchestration(&self) -> Orchestration {
        Orchestration { inner: self.inner.clone() }
    }

    pub fn batch(&self) -> Batch {
        Batch { inner: self.inner.clone() }
    }

    pub fn jobs(&self) -> Jobs {
        Jobs { inner: self.inner.clone() }
    }

    pub fn monitoring(&self) -> Monitoring {
        Monitoring { inner: self.inner.clone() }
    }

    pub fn webhooks(&self) -> Webhooks {
        Webhooks { inner: self.inner.clone() }
    }

    /// Service health with CPU, memory and GPU figures.
    pub async fn health(&self) -> Result<HealthResponse, Error> {
        self.inner.json(Method::GET, "/ai/health", &[], None).await
    }
}

/// `client.ai.models()`.
pub struct Models {
    inner: Arc<Inner>,
}

impl Models {
    /// The first page of the catalog (up to 100 models).
    pub async fn list(&self) -> Result<ModelList, Error> {
        self.page(100, 0).await
    }

    /// One page of the catalog.
    pub async fn page(&self, limit: u32, offset: u32) -> Result<ModelList, Error> {
        let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
        self.inner.json(Method::GET, "/ai/models", &query, None).await
    }

    /// Every model, page after page.
    pub async fn all(&self, page_size: u32) -> Result<Vec<ModelEntry>, Error> {
        let mut models = Vec::new();
        loop {
            let page = self.page(page_size, models.len() as u32).await?;
            let empty = page.models.is_empty();
            models.extend(page.models);
            if !page.pagination.has_more || empty {
                return Ok(models);
            }
        }
    }

    /// Queue a load.
    pub async fn load(&self, model_id: &str, body: &LoadRequest) -> Result<LoadResponse, Error> {
        let path = format!("/ai/models/{}/load", segment(model_id));
        self.inner.json(Method::POST, &path, &[], Some(&to_value(body)?)).await
    }

    /// Free a model's memory.
    pub async fn unload(&self, model_id: &str) -> Result<UnloadResponse, Error> {
        let path = format!("/ai/models/{}/unload", segment(model_id));
        self.inner.json(Method::POST, &path, &[], None).await
    }
}

/// `client.ai.inference()`.
pub struct Inference {
    inner: Arc<Inner>,
}

impl Inference {
    /// Complete `code` at `cursor` with `model_id` (server defaults for the rest).
    pub async fn completion(
        &self,
        model_id: &str,
        code: &str,
        cursor: i64,
    ) -> Result<CompletionResponse, Error> {
        self.complete(&CompletionRequestBody {
            model_id: Some(model_id.to_string()),
            context: CompletionContext {
                code: code.to_string(),
                cursor_position: Some(cursor),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
    }

    /// Any completion request.
    pub async fn complete(&self, body: &CompletionRequestBody) -> Result<CompletionResponse, Error> {
        self.inner.json(Method::POST, "/ai/inference/completion", &[], Some(&to_value(body)?)).await
    }

    /// A streamed completion: token events, then the full response. Dropping
    /// (or `close`-ing) the stream closes the connection, which stops the generation.
    pub async fn stream(&self, body: &CompletionRequestBody) -> Result<CompletionStream, Error> {
        let mut value = to_value(body)?;
        value["options"] = match value.get("options").cloned() {
            Some(serde_json::Value::Object(mut options)) => {
                options.insert("stream".into(), true.into());
                serde_json::Value::Object(options)
            }
            _ => serde_json::json!({"stream": true}),
        };
        let response = self.inner.send(Method::POST, "/ai/inference/completion", &[], Some(&value)).await?;
        Ok(CompletionStream {
            bytes: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
            event: String::new(),
            data: Vec::new(),
            completion: None,
            finished: false,
            timeout: self.inner.timeout,
        })
    }

    /// Generate code from a description.
    pub async fn generation(&self, body: &GenerationRequestBody) -> Result<GenerationResponse, Error> {
        self.inner.json(Method::POST, "/ai/inference/generation", &[], Some(&to_value(body)?)).await
    }

    /// Refactor with safety checks.
    pub async fn refactor(&self, body: &RefactorRequestBody) -> Result<RefactorResponse, Error> {
        self.inner.json(Method::POST, "/ai/inference/refactor", &[], Some(&to_value(body)?)).await
    }

    /// Run a completion as a background job (then `client.ai.jobs().wait(...)`).
    pub async fn completion_job(&self, body: &CompletionRequestBody) -> Result<JobAccepted, Error> {
        let mut value = to_value(body)?;
        value["options"] = serde_json::json!({"async": true});
        self.inner.json(Method::POST, "/ai/inference/completion", &[], Some(&value)).await
    }
}

type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Token events of a streamed completion.
pub struct CompletionStream {
    bytes: ByteStream,
    buffer: Vec<u8>,
    event: String,
    data: Vec<String>,
    completion: Option<CompletionResponse>,
    finished: bool,
    timeout: Duration,
}

impl CompletionStream {
    /// The next token event; `None` after the `done` event (see `completion`).
    pub async fn next(&mut self) -> Option<Result<TokenEvent, Error>> {
        loop {
            if self.finished {
                return None;
            }
            while let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=newline).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let line = String::from_utf8_lossy(&line).into_owned();
                if let Some(item) = self.line(&line) {
                    return Some(item);
                }
                if self.finished {
                    return None;
                }
            }
            match tokio::time::timeout(self.timeout, self.bytes.next()).await {
                Err(_) => return Some(Err(Error::Timeout("the stream went silent".into()))),
                Ok(None) => {
                    self.finished = true;
                    return Some(Err(Error::StreamEnded));
                }
                Ok(Some(Err(e))) => return Some(Err(transport(e))),
                Ok(Some(Ok(chunk))) => self.buffer.extend_from_slice(&chunk),
            }
        }
    }

    fn line(&mut self, line: &str) -> Option<Result<TokenEvent, Error>> {
        if line.is_empty() {
            if self.data.is_empty() {
                return None;
            }
            let data = self.data.join("\n");
            self.data.clear();
            let event = std::mem::take(&mut self.event);
            let decode = |e: serde_json::Error| Error::Decode(e.to_string());
            return match event.as_str() {
                "token" => Some(serde_json::from_str(&data).map_err(decode)),
                "done" => {
                    self.finished = true;
                    match serde_json::from_str(&data) {
                        Ok(done) => {
                            self.completion = Some(done);
                            None
                        }
                        Err(e) => Some(Err(decode(e))),
                    }
                }
                "error" => {
                    self.finished = true;
                    Some(match serde_json::from_str::<ErrorEnvelope>(&data) {
                        Ok(envelope) => Err(Error::Api(ApiError {
                            status: 500,
                            code: ErrorCode::parse(&envelope.error.code),
                            envelope,
                            retry_after: None,
                        })),
                        Err(e) => Err(decode(e)),
                    })
                }
                _ => None,
            };
        }
        if line.starts_with(':') {
            return None;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }

    /// The full response, once the stream has ended.
    pub fn completion(&self) -> Option<&CompletionResponse> {
        self.completion.as_ref()
    }

    /// Read the rest of the stream and return the full response.
    pub async fn finish(mut self) -> Result<CompletionResponse, Error> {
        while let Some(event) = self.next().await {
            event?;
        }
        self.completion.take().ok_or(Error::StreamEnded)
    }

    /// Close the connection: the server cancels the generation.
    pub fn close(self) {}
}

/// `client.ai.orchestration()`.
pub struct Orchestration {
    inner: Arc<Inner>,
}

impl Orchestration {
    /// Run one task on several models and choose.
    pub async fn inference(&self, body: &OrchestrationRequestBody) -> Result<OrchestrationResponse, Error> {
        self.inner.json(Method::POST, "/ai/orchestration/inference", &[], Some(&to_value(body)?)).await
    }
}

/// `client.ai.batch()`.
pub struct Batch {
    inner: Arc<Inner>,
}

impl Batch {
    /// Run many requests in one call.
    pub async fn inference(&self, body: &BatchRequestBody) -> Result<BatchResponse, Error> {
        self.inner.json(Method::POST, "/ai/batch/inference", &[], Some(&to_value(body)?)).await
    }

    /// A stored batch.
    pub async fn get(&self, batch_id: &str) -> Result<BatchResponse, Error> {
        self.inner.json(Method::GET, &format!("/ai/batch/{}", segment(batch_id)), &[], None).await
    }

    /// Poll a background batch until it finishes.
    pub async fn wait(&self, batch_id: &str, max_wait: Duration) -> Result<BatchResponse, Error> {
        let deadline = Instant::now() + max_wait;
        loop {
            let batch = self.get(batch_id).await?;
            if batch.status != "running" {
                return Ok(batch);
            }
            if Instant::now() > deadline {
                return Err(Error::WaitTimeout(format!("batch {batch_id} still running")));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `client.ai.jobs()`.
pub struct Jobs {
    inner: Arc<Inner>,
}

impl Jobs {
    /// A job's status and, once completed, the synchronous call's body.
    pub async fn get(&self, job_id: &str) -> Result<JobStatusResponse, Error> {
        self.inner.json(Method::GET, &format!("/ai/jobs/{}", segment(job_id)), &[], None).await
    }

    /// Poll until the job is completed or failed.
    pub async fn wait(&self, job_id: &str, max_wait: Duration) -> Result<JobStatusResponse, Error> {
        let deadline = Instant::now() + max_wait;
        loop {
            let job = self.get(job_id).await?;
            if job.status == "completed" || job.status == "failed" {
                return Ok(job);
            }
            if Instant::now() > deadline {
                return Err(Error::WaitTimeout(format!("job {job_id} still {}", job.status)));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// `client.ai.monitoring()`.
pub struct Monitoring {
    inner: Arc<Inner>,
}

impl Monitoring {
    /// Recorded figures of a model.
    pub async fn metrics(&self, model_id: &str) -> Result<ModelMetricsResponse, Error> {
        let path = format!("/ai/monitoring/models/{}/metrics", segment(model_id));
        self.inner.json(Method::GET, &path, &[], None).await
    }

    /// The counters in Prometheus text format.
    pub async fn prometheus(&self) -> Result<String, Error> {
        let response = self.inner.send(Method::GET, "/ai/monitoring/prometheus", &[], None).await?;
        response.text().await.map_err(transport)
    }
}

/// `client.ai.webhooks()`.
pub struct Webhooks {
    inner: Arc<Inner>,
}

impl Webhooks {
    /// Subscribe a receiver.
    pub async fn create(&self, body: &CreateWebhook) -> Result<WebhookEntry, Error> {
        self.inner.json(Method::POST, "/ai/webhooks/ai-events", &[], Some(&to_value(body)?)).await
    }

    /// One page of your subscriptions.
    pub async fn page(&self, limit: u32, offset: u32) -> Result<WebhookList, Error> {
        let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
        self.inner.json(Method::GET, "/ai/webhooks/ai-events", &query, None).await
    }

    /// All your subscriptions.
    pub async fn all(&self, page_size: u32) -> Result<Vec<WebhookEntry>, Error> {
        let mut hooks = Vec::new();
        loop {
            let page = self.page(page_size, hooks.len() as u32).await?;
            let empty = page.webhooks.is_empty();
            hooks.extend(page.webhooks);
            if !page.pagination.has_more || empty {
                return Ok(hooks);
            }
        }
    }

    /// One subscription.
    pub async fn get(&self, webhook_id: &str) -> Result<WebhookEntry, Error> {
        let path = format!("/ai/webhooks/ai-events/{}", segment(webhook_id));
        self.inner.json(Method::GET, &path, &[], None).await
    }

    /// Delete a subscription with its delivery log.
    pub async fn delete(&self, webhook_id: &str) -> Result<(), Error> {
        let path = format!("/ai/webhooks/ai-events/{}", segment(webhook_id));
        self.inner.send(Method::DELETE, &path, &[], None).await.map(|_| ())
    }

    /// One page of a subscription's delivery log, newest first.
    pub async fn deliveries(&self, webhook_id: &str, limit: u32, offset: u32) -> Result<DeliveryList, Error> {
        let path = format!("/ai/webhooks/ai-events/{}/deliveries", segment(webhook_id));
        let query = [("limit", limit.to_string()), ("offset", offset.to_string())];
        self.inner.json(Method::GET, &path, &query, None).await
    }

    /// Send a delivery again under the same event id.
    pub async fn redeliver(&self, webhook_id: &str, delivery_id: &str) -> Result<DeliveryEntry, Error> {
        let path = format!(
            "/ai/webhooks/ai-events/{}/deliveries/{}/redeliver",
            segment(webhook_id),
            segment(delivery_id)
        );
        self.inner.json(Method::POST, &path, &[], None).await
    }

    /// Check a delivery's signatures and freshness (see [`webhooks::verify`]).
    pub fn verify(
        &self,
        secret: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<WebhookPayload, webhooks::WebhookError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        webhooks::verify(secret, headers, body, 300, now)
    }
}
