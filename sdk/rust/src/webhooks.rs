//! Verifying webhook deliveries in a receiver: both signatures, and freshness.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::types::WebhookPayload;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookError(pub String);

impl std::fmt::Display for WebhookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "webhook rejected: {}", self.0)
    }
}

impl std::error::Error for WebhookError {}

fn mac(secret: &str, parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Result<&'a str, WebhookError> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| WebhookError(format!("missing {name} header")))
}

/// The payload of a genuine, fresh delivery.
///
/// Checks `webhook-signature` (HMAC-SHA256 over `{id}.{timestamp}.{raw body}`),
/// the timestamp against `tolerance_seconds` around `now` (Unix seconds), and
/// the body's own `signature`. The server sends the body already canonical
/// (sorted keys, no spaces), so the bytes that signature covers are the raw
/// body without its `signature` member: nothing is re-encoded.
pub fn verify(
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    tolerance_seconds: u64,
    now: u64,
) -> Result<WebhookPayload, WebhookError> {
    let id = header(headers, "webhook-id")?;
    let stamp = header(headers, "webhook-timestamp")?;
    let sent_at: u64 = stamp
        .parse()
        .map_err(|_| WebhookError("webhook-timestamp is not an integer".into()))?;
    if now.abs_diff(sent_at) > tolerance_seconds {
        return Err(WebhookError("stale webhook-timestamp (a replay?)".into()));
    }
    let expected = mac(secret, &[id.as_bytes(), b".", stamp.as_bytes(), b".", body]);
    let genuine = header(headers, "webhook-signature")?
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| base64::decode(s).ok())
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if !genuine {
        return Err(WebhookError("bad webhook-signature".into()));
    }
    let text = std::str::from_utf8(body).map_err(|_| WebhookError("body is not UTF-8".into()))?;
    // The top-level member follows data and event_type (sorted keys): the last one.
    let marker = ",\"signature\":\"";
    let start = text.rfind(",\"signature\":\"sha256=").ok_or_else(|| WebhookError("not a webhook payload".into()))?;
    let value_start = start + marker.len();
    let end = text[value_start..]
        .find('"')
        .map(|i| value_start + i)
        .ok_or_else(|| WebhookError("not a webhook payload".into()))?;
    let signature = &text[value_start..end];
    let unsigned = format!("{}{}", &text[..start], &text[end + 1..]);
    let hex_digest = signature
        .strip_prefix("sha256=")
        .ok_or_else(|| WebhookError("bad payload signature".into()))?;
    let digest: Vec<u8> = (0..hex_digest.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex_digest.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    if digest.len() != 32 || mac(secret, &[unsigned.as_bytes()]).verify_slice(&digest).is_err() {
        return Err(WebhookError("bad payload signature".into()));
    }
    serde_json::from_str(text).map_err(|e| WebhookError(format!("not a webhook payload: {e}")))
}
