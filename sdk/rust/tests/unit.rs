//! The SDK's pure parts: retry policy, base URLs, error codes against the contract, webhooks.

use ai_ide_sdk::webhooks::verify;
use ai_ide_sdk::{connect_retry_delay, resolve_base_url, retry_delay, ErrorCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[test]
fn only_429_and_503_are_retried_a_bounded_number_of_times() {
    for status in [400, 401, 404, 409, 422, 500, 502, 504] {
        assert_eq!(retry_delay(1, status, None, 2, 60.0, 0.5), None);
    }
    assert!(retry_delay(1, 429, None, 2, 60.0, 0.5).is_some());
    assert!(retry_delay(2, 503, None, 2, 60.0, 0.5).is_some());
    assert_eq!(retry_delay(3, 503, None, 2, 60.0, 0.5), None);
}

#[test]
fn retry_after_is_honoured_and_backoff_is_exponential_with_jitter() {
    assert_eq!(retry_delay(1, 429, Some(7.0), 2, 30.0, 0.0), Some(7.0));
    assert_eq!(retry_delay(1, 429, Some(31.0), 2, 30.0, 0.0), None);
    let low: Vec<_> = (1..=4).map(|n| retry_delay(n, 503, None, 9, 60.0, 0.0).unwrap()).collect();
    let high: Vec<_> = (1..=6).map(|n| retry_delay(n, 503, None, 9, 60.0, 1.0).unwrap()).collect();
    assert_eq!(low, vec![0.25, 0.5, 1.0, 2.0]);
    assert_eq!(high, vec![0.5, 1.0, 2.0, 4.0, 8.0, 8.0]);
}

#[test]
fn a_connection_that_could_not_be_opened_is_retried_with_backoff_a_bounded_number_of_times() {
    assert_eq!(connect_retry_delay(1, 2, 0.0), Some(0.25));
    assert_eq!(connect_retry_delay(2, 2, 1.0), Some(1.0));
    assert_eq!(connect_retry_delay(3, 2, 0.5), None);
    assert_eq!(connect_retry_delay(1, 0, 0.5), None);
}

#[test]
fn base_urls_are_normalised_to_the_api_root() {
    assert_eq!(resolve_base_url(Some("http://h:1")), "http://h:1/v1");
    assert_eq!(resolve_base_url(Some("http://h:1/v1/")), "http://h:1/v1");
    assert_eq!(resolve_base_url(Some("http://h:1/v1/ai")), "http://h:1/v1");
}

#[test]
fn every_error_code_of_the_contract_has_its_variant() {
    let document: serde_json::Value =
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json");
    let codes = document["components"]["schemas"]["ErrorCode"]["enum"].as_array().unwrap();
    assert!(codes.len() > 20);
    for code in codes {
        let parsed = ErrorCode::parse(code.as_str().unwrap());
        assert!(!matches!(parsed, ErrorCode::Other(_)), "no variant for {code}");
    }
}

const SECRET: &str = "a-long-random-shared-secret";

fn hmac(parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn delivery(stamp: u64) -> (Vec<(String, String)>, String) {
    // What the server sends: canonical JSON (sorted keys, no spaces) with its signature.
    let unsigned = r#"{"data":{"model_id":"m","processing_time_ms":150.0},"event_type":"inference_completed","timestamp":"2026-12-01T12:00:00Z"}"#;
    let hex: String = hmac(&[unsigned.as_bytes()]).iter().map(|b| format!("{b:02x}")).collect();
    let body = unsigned.replace(",\"timestamp\"", &format!(",\"signature\":\"sha256={hex}\",\"timestamp\""));
    let mac = base64::encode(hmac(&[format!("evt_1.{stamp}.").as_bytes(), body.as_bytes()]));
    let headers = vec![
        ("webhook-id".to_string(), "evt_1".to_string()),
        ("Webhook-Timestamp".to_string(), stamp.to_string()),
        ("webhook-signature".to_string(), format!("v1,{mac}")),
    ];
    (headers, body)
}

#[test]
fn the_webhook_verifier_accepts_genuine_deliveries_and_rejects_forgeries() {
    let (headers, body) = delivery(1_800_000_000);
    let payload = verify(SECRET, &headers, body.as_bytes(), 300, 1_800_000_010).unwrap();
    assert_eq!(payload.event_type, "inference_completed");
    assert_eq!(payload.data["model_id"], "m");
    assert!(verify("another-secret-entirely", &headers, body.as_bytes(), 300, 1_800_000_010).is_err());
    assert!(verify(SECRET, &headers, body.replace("\"m\"", "\"n\"").as_bytes(), 300, 1_800_000_010).is_err());
    let stale = verify(SECRET, &headers, body.as_bytes(), 300, 1_800_009_999).unwrap_err();
    assert!(stale.0.contains("stale"));
    // Headers re-signed over a body whose own signature is wrong.
    let forged = body.replace(&body[body.find("sha256=").unwrap() + 7..body.find("sha256=").unwrap() + 71], &"0".repeat(64));
    let mac = base64::encode(hmac(&[b"evt_1.1800000000.", forged.as_bytes()]));
    let mut resigned = headers.clone();
    resigned[2].1 = format!("v1,{mac}");
    let error = verify(SECRET, &resigned, forged.as_bytes(), 300, 1_800_000_010).unwrap_err();
    assert!(error.0.contains("payload signature"));
}
