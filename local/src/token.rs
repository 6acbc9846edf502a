//! HS256 JWT issue/verify for the local runner, mimicking what an API Gateway
//! HTTP API JWT authorizer accepts and what it hands to the Lambda in
//! `requestContext.authorizer.jwt.claims`.
//!
//! Local only: HS256 with a shared secret keeps the runner self-contained; it
//! is not meant to replace the deployed authorizer's checks.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The only header we ever emit; `verify` only checks `alg` from it.
const HEADER_JSON: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Upper bound on accepted token length. API Gateway caps request headers far
/// below this; the bound stops us base64/JSON-decoding arbitrarily large junk.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// SHA-256 block size in bytes; HMAC keys are normalised to exactly this size.
const SHA256_BLOCK: usize = 64;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Cognito omits the claim for users in no group, hence `default`.
    #[serde(rename = "cognito:groups", default)]
    pub groups: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signature does not match")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token issuer is not the expected issuer")]
    WrongIssuer,
    #[error("token audience is not the expected audience")]
    WrongAudience,
    #[error("unsupported token algorithm {0:?} (only HS256 is accepted)")]
    UnsupportedAlgorithm(String),
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
}

#[derive(Clone)]
pub struct TokenIssuer {
    mac: HmacSha256,
    issuer: String,
    audience: String,
}

// Hand-written so the secret can never end up in logs.
impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("issuer", &self.issuer).field("audience", &self.audience).finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn new(secret: Vec<u8>, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self { mac: keyed_mac(&secret), issuer: issuer.into(), audience: audience.into() }
    }

    /// Signs a token for `sub` in `groups`, valid from `now` (unix seconds) for `ttl_seconds`.
    pub fn issue(&self, sub: &str, groups: &[String], now: i64, ttl_seconds: i64) -> String {
        let groups_json: Vec<String> = groups.iter().map(|g| json_string(g)).collect();
        // Built by hand (field order = `Claims`) because it cannot fail, unlike
        // `serde_json::to_string`, and so the bytes do not depend on serde_json
        // features such as `preserve_order`. A test pins it to the derived form.
        let payload = format!(
            r#"{{"sub":{},"cognito:groups":[{}],"iss":{},"aud":{},"iat":{},"exp":{}}}"#,
            json_string(sub),
            groups_json.join(","),
            json_string(&self.issuer),
            json_string(&self.audience),
            now,
            // Saturate so a silly ttl cannot overflow-panic in debug builds.
            now.saturating_add(ttl_seconds),
        );
        self.sign(HEADER_JSON.as_bytes(), payload.as_bytes())
    }

    /// Verifies signature (constant time), alg == HS256 in the header (reject "none" and anything else), iss, aud, exp > now (allow no leeway) and returns the claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(malformed("token is too long"));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("expected three dot-separated segments"));
        };

        // Algorithm first: never let the token choose how it is checked.
        let header: Header =
            serde_json::from_slice(&decode(header_b64, "header")?).map_err(|e| malformed(format!("header is not valid JSON: {e}")))?;
        if header.alg != "HS256" {
            return Err(TokenError::UnsupportedAlgorithm(header.alg));
        }

        // Signature before looking at the payload: unauthenticated claims are
        // never parsed, and a tampered payload reports BadSignature.
        let sig = decode(sig_b64, "signature")?;
        let mut mac = self.mac.clone();
        mac.update(header_b64.as_bytes());
        mac.update(b".");
        mac.update(payload_b64.as_bytes());
        // verify_slice compares in constant time (and rejects wrong lengths).
        mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;

        let claims: Claims = serde_json::from_slice(&decode(payload_b64, "payload")?)
            .map_err(|e| malformed(format!("payload is not valid claims JSON: {e}")))?;
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        // No leeway, like API Gateway: a token is dead at its exp second.
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The claims as API Gateway HTTP API puts them in requestContext.authorizer.jwt.claims: a flat map of strings.
    /// Array claims are rendered the way API Gateway does it: "[a b]" (square brackets, space separated), numbers as their decimal text.
    pub fn authorizer_claims(claims: &Claims) -> HashMap<String, String> {
        HashMap::from([
            ("sub".to_owned(), claims.sub.clone()),
            ("cognito:groups".to_owned(), format!("[{}]", claims.groups.join(" "))),
            ("iss".to_owned(), claims.iss.clone()),
            ("aud".to_owned(), claims.aud.clone()),
            ("iat".to_owned(), claims.iat.to_string()),
            ("exp".to_owned(), claims.exp.to_string()),
        ])
    }

    /// `b64(header).b64(payload).b64(HMAC(b64(header).b64(payload)))`.
    fn sign(&self, header_json: &[u8], payload_json: &[u8]) -> String {
        let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header_json), URL_SAFE_NO_PAD.encode(payload_json));
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        let sig = mac.finalize().into_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// Reads the bearer token from an Authorization header value ("Bearer xxx", case-insensitive scheme); None when absent or another scheme.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    // A token is one opaque word; anything else is not a bearer credential.
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    Some(token)
}

/// HMAC key set-up per RFC 2104: keys longer than the block are hashed, then
/// zero-padded to the block. Doing it here lets us use the infallible
/// fixed-size constructor instead of `new_from_slice(..).expect(..)`; the
/// resulting MAC is identical (a test checks against `new_from_slice`).
fn keyed_mac(secret: &[u8]) -> HmacSha256 {
    let mut block = [0u8; SHA256_BLOCK];
    if secret.len() > SHA256_BLOCK {
        let digest = Sha256::digest(secret);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..secret.len()].copy_from_slice(secret);
    }
    <HmacSha256 as Mac>::new(&GenericArray::from(block))
}

/// A JSON string literal with proper escaping; Value's Display cannot fail for strings.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn decode(segment: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|e| malformed(format!("{what} is not unpadded base64url: {e}")))
}

fn malformed(msg: impl Into<String>) -> TokenError {
    TokenError::Malformed(msg.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret";
    const ISS: &str = "https://issuer.example";
    const AUD: &str = "local-client";
    const NOW: i64 = 1_700_000_000;

    /// Produced once, independently of this code, with Python's standard library:
    ///
    /// ```python
    /// import hmac, hashlib, base64, json
    /// b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    /// h = json.dumps({"alg":"HS256","typ":"JWT"}, separators=(",",":")).encode()
    /// p = json.dumps({"sub":"user-123","cognito:groups":["owner","courier"],
    ///     "iss":"https://issuer.example","aud":"local-client",
    ///     "iat":1700000000,"exp":1700003600}, separators=(",",":")).encode()
    /// si = b64(h) + "." + b64(p)
    /// print(si + "." + b64(hmac.new(b"interop-test-secret", si.encode(), hashlib.sha256).digest()))
    /// ```
    const PYTHON_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEyMyIsImNvZ25pdG86Z3JvdXBzIjpbIm93bmVyIiwiY291cmllciJdLCJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoibG9jYWwtY2xpZW50IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.a4Oi-Vge0wvY5677KyJihDcidrrzybhAAv9wSTTRv10";
    const PYTHON_SECRET: &[u8] = b"interop-test-secret";
    /// Same script, same claims, key `b"k" * 100` (longer than the 64-byte
    /// block, so it exercises the hashed-key path of RFC 2104).
    const PYTHON_TOKEN_LONG_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEyMyIsImNvZ25pdG86Z3JvdXBzIjpbIm93bmVyIiwiY291cmllciJdLCJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoibG9jYWwtY2xpZW50IiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.SDBEzHQTSu1fdbpb0zDYr_yuFLOEfnkBGWvcO-usnHw";

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(SECRET.to_vec(), ISS, AUD)
    }

    fn groups(gs: &[&str]) -> Vec<String> {
        gs.iter().map(|g| g.to_string()).collect()
    }

    fn valid_payload_json() -> String {
        format!(r#"{{"sub":"u","cognito:groups":[],"iss":"{ISS}","aud":"{AUD}","iat":{NOW},"exp":{}}}"#, NOW + 60)
    }

    fn assert_malformed(r: Result<Claims, TokenError>) {
        assert!(matches!(r, Err(TokenError::Malformed(_))), "expected Malformed, got {r:?}");
    }

    /// Replaces the first character of segment `idx` with a different base64url char.
    fn tamper(token: &str, idx: usize) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let first = if parts[idx].starts_with('A') { "B" } else { "A" };
        parts[idx].replace_range(0..1, first);
        parts.join(".")
    }

    #[test]
    fn round_trip() {
        let t = issuer();
        let token = t.issue("user-1", &groups(&["owner", "courier"]), NOW, 3600);
        let claims = t.verify(&token, NOW).unwrap();
        assert_eq!(
            claims,
            Claims {
                sub: "user-1".into(),
                groups: groups(&["owner", "courier"]),
                iss: ISS.into(),
                aud: AUD.into(),
                iat: NOW,
                exp: NOW + 3600,
            }
        );
    }

    #[test]
    fn round_trip_escapes_awkward_strings() {
        let t = issuer();
        let sub = "quote\" backslash\\ newline\n unicode é";
        let token = t.issue(sub, &groups(&["a,b", "]"]), NOW, 10);
        let claims = t.verify(&token, NOW).unwrap();
        assert_eq!(claims.sub, sub);
        assert_eq!(claims.groups, groups(&["a,b", "]"]));
    }

    #[test]
    fn issued_token_has_expected_header_and_three_segments() {
        let token = issuer().issue("u", &[], NOW, 10);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), HEADER_JSON.as_bytes());
        assert!(!token.contains('='), "no base64 padding");
    }

    #[test]
    fn hand_built_payload_matches_serde() {
        let t = issuer();
        let token = t.issue("u\"1", &groups(&["owner", "x y"]), NOW, 10);
        let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
        let claims = t.verify(&token, NOW).unwrap();
        assert_eq!(String::from_utf8(payload).unwrap(), serde_json::to_string(&claims).unwrap());
    }

    #[test]
    fn known_good_python_token_verifies() {
        let t = TokenIssuer::new(PYTHON_SECRET.to_vec(), ISS, AUD);
        let claims = t.verify(PYTHON_TOKEN, NOW).unwrap();
        assert_eq!(claims.sub, "user-123");
        assert_eq!(claims.groups, groups(&["owner", "courier"]));
        assert_eq!((claims.iat, claims.exp), (1_700_000_000, 1_700_003_600));
        // Same JSON layout as Python's compact dumps, so issuing is byte-identical too.
        assert_eq!(t.issue("user-123", &groups(&["owner", "courier"]), NOW, 3600), PYTHON_TOKEN);
    }

    #[test]
    fn known_good_python_token_with_long_key_verifies() {
        let t = TokenIssuer::new(vec![b'k'; 100], ISS, AUD);
        assert_eq!(t.verify(PYTHON_TOKEN_LONG_KEY, NOW).unwrap().sub, "user-123");
    }

    #[test]
    fn keyed_mac_matches_new_from_slice() {
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let key = vec![0x5a; len];
            let mut a = keyed_mac(&key);
            let mut b = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
            a.update(b"msg");
            b.update(b"msg");
            assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes(), "key length {len}");
        }
    }

    #[test]
    fn expired() {
        let t = issuer();
        let token = t.issue("u", &[], NOW, 60);
        assert_eq!(t.verify(&token, NOW + 61), Err(TokenError::Expired));
    }

    #[test]
    fn expiry_boundary_has_no_leeway() {
        let t = issuer();
        let token = t.issue("u", &[], NOW, 60);
        assert!(t.verify(&token, NOW + 59).is_ok());
        assert_eq!(t.verify(&token, NOW + 60), Err(TokenError::Expired), "exp == now is expired");
    }

    #[test]
    fn huge_ttl_saturates_instead_of_overflowing() {
        let t = issuer();
        let token = t.issue("u", &[], NOW, i64::MAX);
        assert_eq!(t.verify(&token, NOW).unwrap().exp, i64::MAX);
    }

    #[test]
    fn tampered_payload() {
        let t = issuer();
        let token = t.issue("u", &groups(&["customer"]), NOW, 60);
        assert_eq!(t.verify(&tamper(&token, 1), NOW), Err(TokenError::BadSignature));

        // A meaningful forgery: claim "owner" but keep the original signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = valid_payload_json().replace("[]", r#"["owner"]"#);
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(forged), parts[2]);
        assert_eq!(t.verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_signature() {
        let t = issuer();
        let token = t.issue("u", &[], NOW, 60);
        assert_eq!(t.verify(&tamper(&token, 2), NOW), Err(TokenError::BadSignature));
        // Truncated signature (still valid base64url) is a mismatch, not a panic.
        let short = &token[..token.len() - 3]; // 40 sig chars: whole bytes
        assert_eq!(t.verify(short, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn other_secret_rejected() {
        let other = TokenIssuer::new(b"another-secret".to_vec(), ISS, AUD);
        let token = other.issue("u", &[], NOW, 60);
        assert_eq!(issuer().verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn alg_none_rejected() {
        let payload = URL_SAFE_NO_PAD.encode(valid_payload_json());
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        // Unsigned token: the header is read first, so the algorithm is named.
        assert_eq!(issuer().verify(&format!("{header}.{payload}."), NOW), Err(TokenError::UnsupportedAlgorithm("none".into())));
        // Without the trailing dot it is not even a JWS.
        assert_malformed(issuer().verify(&format!("{header}.{payload}"), NOW));
    }

    #[test]
    fn other_algorithms_rejected_even_when_correctly_signed() {
        let t = issuer();
        for alg in ["HS512", "RS256", "hs256", ""] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            let token = t.sign(header.as_bytes(), valid_payload_json().as_bytes());
            assert_eq!(t.verify(&token, NOW), Err(TokenError::UnsupportedAlgorithm(alg.into())));
        }
    }

    #[test]
    fn wrong_issuer() {
        let token = TokenIssuer::new(SECRET.to_vec(), "https://evil.example", AUD).issue("u", &[], NOW, 60);
        assert_eq!(issuer().verify(&token, NOW), Err(TokenError::WrongIssuer));
    }

    #[test]
    fn wrong_audience() {
        let token = TokenIssuer::new(SECRET.to_vec(), ISS, "other-client").issue("u", &[], NOW, 60);
        assert_eq!(issuer().verify(&token, NOW), Err(TokenError::WrongAudience));
    }

    #[test]
    fn missing_groups_claim_means_no_groups() {
        let t = issuer();
        let payload = valid_payload_json().replace(r#""cognito:groups":[],"#, "");
        let token = t.sign(HEADER_JSON.as_bytes(), payload.as_bytes());
        assert_eq!(t.verify(&token, NOW).unwrap().groups, Vec::<String>::new());
    }

    #[test]
    fn malformed_inputs() {
        let t = issuer();
        let good = t.issue("u", &[], NOW, 60);
        let parts: Vec<&str> = good.split('.').collect();
        let not_json = URL_SAFE_NO_PAD.encode("not json");
        let cases = [
            String::new(),
            "abc".into(),
            "a.b".into(),
            format!("{good}.extra"),
            "...".into(),
            "!!!.@@@.###".into(),
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]), // padding is not allowed
            format!("{}.{}.{}", not_json, parts[1], parts[2]),
            "\u{0}\u{ff}.\u{1f600}.x".into(),
        ];
        for case in &cases {
            assert_malformed(t.verify(case, NOW));
        }
        // Correctly signed but the payload is not JSON / not claims.
        for payload in ["not json", "[]", r#"{"sub":"u"}"#, r#"{"sub":1,"iss":"","aud":"","iat":0,"exp":0}"#] {
            assert_malformed(t.verify(&t.sign(HEADER_JSON.as_bytes(), payload.as_bytes()), NOW));
        }
        // Bad base64 in the signature segment.
        assert_malformed(t.verify(&format!("{}.{}.***", parts[0], parts[1]), NOW));
    }

    #[test]
    fn huge_input_is_rejected_without_decoding() {
        let t = issuer();
        let huge = format!("{}.{}.{}", "a".repeat(1 << 20), "b".repeat(1 << 20), "c".repeat(64));
        assert_malformed(t.verify(&huge, NOW));
        assert_malformed(t.verify(&".".repeat(1 << 20), NOW));
    }

    #[test]
    fn every_prefix_of_a_valid_token_fails_cleanly() {
        let t = issuer();
        let token = t.issue("u", &groups(&["owner"]), NOW, 60);
        for end in 0..token.len() {
            assert!(t.verify(&token[..end], NOW).is_err(), "prefix {end}");
        }
    }

    #[test]
    fn authorizer_claims_render_like_api_gateway() {
        let claims =
            Claims { sub: "user-1".into(), groups: groups(&["owner"]), iss: ISS.into(), aud: AUD.into(), iat: NOW, exp: NOW + 3600 };
        let map = TokenIssuer::authorizer_claims(&claims);
        assert_eq!(map["cognito:groups"], "[owner]");
        assert_eq!(map["sub"], "user-1");
        assert_eq!(map["iss"], ISS);
        assert_eq!(map["aud"], AUD);
        assert_eq!(map["iat"], "1700000000");
        assert_eq!(map["exp"], "1700003600");
        assert_eq!(map.len(), 6);

        let two = Claims { groups: groups(&["a", "b"]), ..claims.clone() };
        assert_eq!(TokenIssuer::authorizer_claims(&two)["cognito:groups"], "[a b]");
        let none = Claims { groups: vec![], ..claims };
        assert_eq!(TokenIssuer::authorizer_claims(&none)["cognito:groups"], "[]");
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("  Bearer   abc  "), Some("abc"));
        assert_eq!(bearer("Bearer\tabc"), Some("abc"));
        assert_eq!(bearer(""), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer("Bearerabc"), None);
        assert_eq!(bearer("abc.def.ghi"), None);
        assert_eq!(bearer("Bearer a b"), None);
    }

    #[test]
    fn error_messages_are_clear() {
        assert_eq!(TokenError::Expired.to_string(), "token has expired");
        assert_eq!(
            TokenError::UnsupportedAlgorithm("none".into()).to_string(),
            r#"unsupported token algorithm "none" (only HS256 is accepted)"#
        );
        assert!(TokenError::Malformed("x".into()).to_string().contains("malformed"));
    }

    #[test]
    fn debug_does_not_leak_secret() {
        let dbg = format!("{:?}", TokenIssuer::new(b"super-secret-value".to_vec(), ISS, AUD));
        assert!(!dbg.contains("super-secret"), "{dbg}");
    }
}
