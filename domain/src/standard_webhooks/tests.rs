//! The reference library's published vector, the verification rules one at a time, and the
//! secret's parsing. The cross-check against the reference library itself is in
//! tests/process/standard_webhooks.rs.

use super::*;

// From the reference library's own tests (libraries/python/tests/test_webhooks.py).
const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const REF_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const REF_TIMESTAMP: i64 = 1_614_265_330;
const REF_BODY: &[u8] = br#"{"test": 2432232314}"#;
const REF_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn ref_secret() -> WebhookSecret {
    WebhookSecret::parse(REF_SECRET).expect("the reference secret parses")
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("in range")
}

fn secret_of_len(len: usize) -> Result<WebhookSecret, SecretError> {
    WebhookSecret::parse(&format!(
        "{SECRET_PREFIX}{}",
        STANDARD.encode(vec![0x5a; len])
    ))
}

/// Verifies the reference message with the given header values at `now`.
fn verify_ref(
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedWebhook, VerifyError> {
    verify(&ref_secret(), id, timestamp, signature, body, now)
}

fn ref_timestamp() -> String {
    REF_TIMESTAMP.to_string()
}

#[test]
fn the_reference_vector_signs_and_verifies() {
    assert_eq!(
        sign(&ref_secret(), REF_ID, REF_TIMESTAMP, REF_BODY),
        REF_SIGNATURE
    );
    let ok = verify_ref(
        Some(REF_ID),
        Some(&ref_timestamp()),
        Some(REF_SIGNATURE),
        REF_BODY,
        at(REF_TIMESTAMP),
    )
    .expect("the reference signature verifies");
    assert_eq!(
        ok,
        VerifiedWebhook {
            id: REF_ID.into(),
            timestamp: at(REF_TIMESTAMP)
        }
    );
}

#[test]
fn signed_headers_round_trip() {
    let secret = WebhookSecret::generate().expect("random source");
    let body = b"\x00\xff\xfe not utf-8 \x80";
    let signed = Signed::new(&secret, "evt_01", 1_700_000_000, body).expect("valid id");
    let names: Vec<_> = signed.headers().iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    assert_eq!(signed.timestamp, "1700000000");
    let ok = verify(
        &secret,
        Some(&signed.id),
        Some(&signed.timestamp),
        Some(&signed.signature),
        body,
        at(1_700_000_010),
    )
    .expect("its own signature verifies");
    assert_eq!(
        ok,
        VerifiedWebhook {
            id: "evt_01".into(),
            timestamp: at(1_700_000_000)
        }
    );
}

#[test]
fn any_tampering_or_another_secret_is_refused() {
    let secret = WebhookSecret::generate().expect("random source");
    let (id, timestamp, body) = ("msg_a", 1_700_000_000, b"{\"amount\":1}".as_slice());
    let signed = Signed::new(&secret, id, timestamp, body).expect("valid id");
    let now = at(timestamp);
    let check = |secret: &WebhookSecret, id: &str, timestamp: &str, body: &[u8]| {
        verify(
            secret,
            Some(id),
            Some(timestamp),
            Some(&signed.signature),
            body,
            now,
        )
    };
    assert!(
        check(&secret, id, &signed.timestamp, body).is_ok(),
        "untouched"
    );

    let refused = [
        check(&secret, "msg_b", &signed.timestamp, body),
        check(&secret, id, "1700000001", body),
        check(&secret, id, &signed.timestamp, b"{\"amount\":2}"),
        check(&secret, id, &signed.timestamp, b""),
        check(&ref_secret(), id, &signed.timestamp, body),
    ];
    for (i, result) in refused.into_iter().enumerate() {
        assert_eq!(result, Err(VerifyError::NoValidSignature), "case {i}");
    }
}

#[test]
fn the_tolerance_is_five_minutes_inclusive_either_way() {
    let ts = ref_timestamp();
    let check = |now: DateTime<Utc>| {
        verify_ref(Some(REF_ID), Some(&ts), Some(REF_SIGNATURE), REF_BODY, now)
    };
    let sent = at(REF_TIMESTAMP);
    assert!(check(sent + TOLERANCE).is_ok(), "exactly 5 min old");
    assert!(check(sent - TOLERANCE).is_ok(), "exactly 5 min ahead");

    let stale = check(sent + TOLERANCE + TimeDelta::seconds(1)).expect_err("301 s old");
    assert_eq!(
        stale,
        VerifyError::TimestampOutOfTolerance {
            skew: Skew::Past,
            by: TimeDelta::seconds(301)
        }
    );
    assert_eq!(
        stale.to_string(),
        "webhook-timestamp is 301s in the past, beyond the 300s tolerance"
    );
    let future = check(sent - TOLERANCE - TimeDelta::seconds(1)).expect_err("301 s ahead");
    assert_eq!(
        future,
        VerifyError::TimestampOutOfTolerance {
            skew: Skew::Future,
            by: TimeDelta::seconds(301)
        }
    );

    // The reference compares with the sub-second clock: half a second past the bound is out.
    let half = TimeDelta::milliseconds(500);
    assert!(matches!(
        check(sent + TOLERANCE + half),
        Err(VerifyError::TimestampOutOfTolerance {
            skew: Skew::Past,
            ..
        })
    ));
    assert!(matches!(
        check(sent - TOLERANCE - half),
        Err(VerifyError::TimestampOutOfTolerance {
            skew: Skew::Future,
            ..
        })
    ));
}

#[test]
fn one_valid_v1_among_several_signatures_is_enough() {
    let ts = ref_timestamp();
    let bogus = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let lists = [
        format!("{bogus} v2,{} {REF_SIGNATURE} {bogus}", &REF_SIGNATURE[3..]),
        format!("{REF_SIGNATURE} {bogus}"),
        format!("{bogus} {REF_SIGNATURE}"),
    ];
    for list in &lists {
        let ok = verify_ref(
            Some(REF_ID),
            Some(&ts),
            Some(list),
            REF_BODY,
            at(REF_TIMESTAMP),
        );
        assert!(ok.is_ok(), "{list}: {ok:?}");
    }
    let only_bogus = format!("{bogus} {bogus}");
    let err = verify_ref(
        Some(REF_ID),
        Some(&ts),
        Some(&only_bogus),
        REF_BODY,
        at(REF_TIMESTAMP),
    );
    assert_eq!(err, Err(VerifyError::NoValidSignature));
}

#[test]
fn unknown_versions_and_unparsable_entries_are_skipped() {
    let ts = ref_timestamp();
    let right = &REF_SIGNATURE[3..];
    // The right HMAC under another version label must not count: only `v1` is HMAC-SHA256.
    let noise = format!("v1a,{right} v2,{right} V1,{right} {right} v1,not-base64! ,  v1");
    let with_valid = format!("{noise} {REF_SIGNATURE}");
    let now = at(REF_TIMESTAMP);
    assert!(verify_ref(Some(REF_ID), Some(&ts), Some(&with_valid), REF_BODY, now).is_ok());
    let err = verify_ref(Some(REF_ID), Some(&ts), Some(&noise), REF_BODY, now);
    assert_eq!(err, Err(VerifyError::NoValidSignature));
}

#[test]
fn a_missing_or_empty_header_is_named() {
    let ts = ref_timestamp();
    let now = at(REF_TIMESTAMP);
    let full = [Some(REF_ID), Some(ts.as_str()), Some(REF_SIGNATURE)];
    let which = [Header::Id, Header::Timestamp, Header::Signature];
    for (i, header) in which.into_iter().enumerate() {
        for absent in [None, Some("")] {
            let mut values = full;
            values[i] = absent;
            let err = verify_ref(values[0], values[1], values[2], REF_BODY, now);
            assert_eq!(err, Err(VerifyError::MissingHeader(header)), "{absent:?}");
        }
    }
    assert_eq!(
        VerifyError::MissingHeader(Header::Timestamp).to_string(),
        "missing webhook-timestamp header"
    );
}

#[test]
fn a_timestamp_that_is_not_canonical_integer_seconds_is_malformed() {
    let now = at(REF_TIMESTAMP);
    for raw in [
        "hello",
        "+1614265330",
        "01614265330",
        "1614265330.0",
        " 1614265330",
        "1614265330 ",
        "-0",
        "99999999999999999999",
        "9223372036854775807",
    ] {
        let err = verify_ref(Some(REF_ID), Some(raw), Some(REF_SIGNATURE), REF_BODY, now);
        assert_eq!(err, Err(VerifyError::MalformedTimestamp), "{raw:?}");
    }
}

#[test]
fn ids_must_be_short_dot_free_and_non_empty() {
    let secret = ref_secret();
    let longest = "a".repeat(MAX_ID_LEN);
    let signed = Signed::new(&secret, &longest, REF_TIMESTAMP, REF_BODY).expect("255 bytes");
    let ok = verify(
        &secret,
        Some(&signed.id),
        Some(&signed.timestamp),
        Some(&signed.signature),
        REF_BODY,
        at(REF_TIMESTAMP),
    );
    assert!(ok.is_ok(), "{ok:?}");

    let too_long = "a".repeat(MAX_ID_LEN + 1);
    let refused = [
        (
            too_long.as_str(),
            IdError::TooLong {
                len: MAX_ID_LEN + 1,
            },
        ),
        ("msg.1", IdError::ContainsDot),
        ("", IdError::Empty),
    ];
    let ts = ref_timestamp();
    for (id, expected) in refused {
        assert_eq!(
            Signed::new(&secret, id, REF_TIMESTAMP, REF_BODY),
            Err(expected.clone())
        );
        if id.is_empty() {
            continue; // an empty header counts as missing, tested above
        }
        let sig = sign(&secret, id, REF_TIMESTAMP, REF_BODY);
        let err = verify(
            &secret,
            Some(id),
            Some(&ts),
            Some(&sig),
            REF_BODY,
            at(REF_TIMESTAMP),
        );
        assert_eq!(err, Err(VerifyError::InvalidId(expected)));
    }
}

#[test]
fn secrets_parse_within_the_spec_sizes_only() {
    assert_eq!(
        WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").err(),
        Some(SecretError::MissingPrefix)
    );
    assert!(matches!(
        WebhookSecret::parse("whsec_not*base64"),
        Err(SecretError::Base64(_))
    ));
    assert_eq!(
        secret_of_len(0).err(),
        Some(SecretError::TooShort { len: 0 })
    );
    assert_eq!(
        secret_of_len(23).err(),
        Some(SecretError::TooShort { len: 23 })
    );
    assert_eq!(
        secret_of_len(65).err(),
        Some(SecretError::TooLong { len: 65 })
    );
    for len in [MIN_KEY_LEN, GENERATED_KEY_LEN, MAX_KEY_LEN] {
        let secret = secret_of_len(len).expect("in range");
        assert_eq!(secret.key().len(), len);
        assert_eq!(
            WebhookSecret::parse(&secret.to_string()).map(|s| s.to_string()),
            Ok(secret.to_string())
        );
    }
    // 25 bytes need padding; like the reference library, it may be left off.
    let padded = format!("{SECRET_PREFIX}{}", STANDARD.encode([1u8; 25]));
    assert!(padded.ends_with('='));
    let unpadded = WebhookSecret::parse(padded.trim_end_matches('=')).expect("unpadded");
    assert_eq!(unpadded.to_string(), padded);
}

#[test]
fn generated_secrets_are_fresh_and_never_debug_printed() {
    let a = WebhookSecret::generate().expect("random source");
    let b = WebhookSecret::generate().expect("random source");
    assert_eq!(a.key().len(), GENERATED_KEY_LEN);
    assert_ne!(a.key(), b.key());
    let shown = a.to_string();
    assert!(shown.starts_with(SECRET_PREFIX));
    assert_eq!(
        WebhookSecret::parse(&shown).expect("its own form").key(),
        a.key()
    );

    let debug = format!("{a:?} {:?}", Some(&a));
    assert!(!debug.contains(&shown[SECRET_PREFIX.len()..]), "{debug}");
    assert!(debug.contains("32 bytes, redacted"), "{debug}");
}
