//! Strict parsing of a `t=<unix seconds>,v1=<hex>[,v1=<hex>…]` signature header (the sandbox
//! provider's `Countersign-Signature`, Zigned's `x-zigned-request-signature`).

use crate::WebhookError;

/// Bytes of an HMAC-SHA256 tag, which is what a `v1` value encodes.
pub(crate) const V1_LEN: usize = 32;

/// The parts of the header that matter for verification.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SignatureHeader {
    pub(crate) timestamp: i64,
    /// Every `v1` value, in the order sent: several during secret rotation.
    pub(crate) v1: Vec<[u8; V1_LEN]>,
}

/// Parts are `scheme=value` (scheme alphanumeric), comma-separated, in any order, spaces around a part allowed.
/// Exactly one `t` and at least one `v1` are required; other schemes (`v0`, a future `v2`) are
/// skipped without being judged, so a sender can add a scheme before verifiers know it.
pub(crate) fn parse(value: &str) -> Result<SignatureHeader, WebhookError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in value.split(',') {
        let (scheme, content) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookError::MalformedSignature)?;
        let scheme_is_a_word =
            !scheme.is_empty() && scheme.bytes().all(|byte| byte.is_ascii_alphanumeric());
        if !scheme_is_a_word || content.is_empty() {
            return Err(WebhookError::MalformedSignature);
        }
        match scheme {
            "t" if timestamp.is_some() => return Err(WebhookError::MalformedSignature),
            "t" => timestamp = Some(parse_timestamp(content)?),
            "v1" => v1.push(parse_v1(content)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
    if v1.is_empty() {
        return Err(WebhookError::MalformedSignature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// An optional minus sign and decimal digits only: `i64::from_str` alone would also take `+5`.
fn parse_timestamp(content: &str) -> Result<i64, WebhookError> {
    let digits = content.strip_prefix('-').unwrap_or(content);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(WebhookError::MalformedSignature);
    }
    content
        .parse()
        .map_err(|_| WebhookError::MalformedSignature)
}

/// Hex of exactly one HMAC-SHA256 tag (either case).
fn parse_v1(content: &str) -> Result<[u8; V1_LEN], WebhookError> {
    let mut tag = [0u8; V1_LEN];
    hex::decode_to_slice(content, &mut tag).map_err(|_| WebhookError::MalformedSignature)?;
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG_A: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const TAG_B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn tag(hex_text: &str) -> [u8; V1_LEN] {
        let mut tag = [0u8; V1_LEN];
        hex::decode_to_slice(hex_text, &mut tag).unwrap();
        tag
    }

    #[test]
    fn parses_timestamp_and_signatures_in_any_order() {
        let expected = SignatureHeader {
            timestamp: 1_795_341_600,
            v1: vec![tag(TAG_A), tag(TAG_B)],
        };
        assert_eq!(
            parse(&format!("t=1795341600,v1={TAG_A},v1={TAG_B}")),
            Ok(expected)
        );
        let reordered = parse(&format!("v1={TAG_A}, t=1795341600 ,v1={TAG_B}")).unwrap();
        assert_eq!(reordered.timestamp, 1_795_341_600);
        assert_eq!(reordered.v1, vec![tag(TAG_A), tag(TAG_B)]);
    }

    #[test]
    fn skips_unknown_schemes_without_judging_them() {
        let parsed = parse(&format!("v0=not-hex,t=5,v1={TAG_A},v2=???")).unwrap();
        assert_eq!(parsed.timestamp, 5);
        assert_eq!(parsed.v1, vec![tag(TAG_A)]);
    }

    #[test]
    fn accepts_upper_case_hex_and_negative_timestamps() {
        let parsed = parse(&format!("t=-42,v1={}", TAG_B.to_uppercase())).unwrap();
        assert_eq!(parsed.timestamp, -42);
        assert_eq!(parsed.v1, vec![tag(TAG_B)]);
    }

    #[test]
    fn rejects_malformed_headers() {
        let malformed = [
            String::new(),
            " ".to_owned(),
            format!("v1={TAG_A}"),                         // no t
            "t=1795341600".to_owned(),                     // no v1
            format!("t=1795341600,v0={TAG_A}"),            // only an unknown scheme
            format!("t=abc,v1={TAG_A}"),                   // non-numeric t
            format!("t=,v1={TAG_A}"),                      // empty t
            format!("t=+5,v1={TAG_A}"),                    // sign other than minus
            format!("t=-,v1={TAG_A}"),                     // sign alone
            format!("t=1.5,v1={TAG_A}"),                   // not an integer
            format!("t=99999999999999999999,v1={TAG_A}"),  // beyond i64
            format!("t=1,t=1,v1={TAG_A}"),                 // two timestamps
            format!("t=1,v1={}", &TAG_A[1..]),             // odd hex
            format!("t=1,v1={}", &TAG_A[2..]),             // too short for a tag
            format!("t=1,v1={TAG_A}00"),                   // too long for a tag
            format!("t=1,v1={}", TAG_A.replace('a', "g")), // not hex
            "t=1,v1=".to_owned(),                          // empty v1
            format!("t=1,v1={TAG_A},"),                    // empty part
            format!("t=1,,v1={TAG_A}"),                    // empty part
            format!("t=1,v1{TAG_A}"),                      // no '='
            format!("t=1,={TAG_A}"),                       // no scheme
            format!("t = 1,v1={TAG_A}"),                   // spaces inside a part
            format!("t=1,v1 ={TAG_A}"),                    // spaces inside a part
        ];
        for header in malformed {
            assert_eq!(
                parse(&header),
                Err(WebhookError::MalformedSignature),
                "header {header:?}"
            );
        }
    }
}
