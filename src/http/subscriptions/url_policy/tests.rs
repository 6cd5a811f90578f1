//! The URL rules one at a time: the form, the ranges refused always, the ranges refused
//! unless private subscribers are allowed, and the IPv4 hidden in IPv6 and other spellings.
//! Names are resolved only for `localhost` (the hosts file): no test query leaves the machine.

use super::*;

const STRICT: UrlPolicy = UrlPolicy {
    allow_private: false,
};
const LOCAL: UrlPolicy = UrlPolicy {
    allow_private: true,
};

#[test]
fn the_form_must_be_an_absolute_http_url_without_credentials() {
    for policy in [STRICT, LOCAL] {
        let refused = |raw: &str| policy.check_form(raw).unwrap_err();
        assert!(matches!(refused("/hooks"), UrlRefused::NotAUrl(_)));
        assert!(matches!(refused("not a url"), UrlRefused::NotAUrl(_)));
        assert_eq!(refused("ftp://8.8.8.8/x"), UrlRefused::Scheme);
        assert_eq!(refused("file:///etc/passwd"), UrlRefused::Scheme);
        assert_eq!(refused("javascript:alert(1)"), UrlRefused::Scheme);
        assert_eq!(refused("https://user@8.8.8.8/"), UrlRefused::UserInfo);
        assert_eq!(refused("https://:pw@8.8.8.8/"), UrlRefused::UserInfo);
        let long = format!("https://8.8.8.8/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(refused(&long), UrlRefused::TooLong);
        let longest = format!("https://8.8.8.8/{}", "a".repeat(MAX_URL_LEN - 16));
        assert_eq!(longest.len(), MAX_URL_LEN);
        assert!(policy.check_form(&longest).is_ok());
    }
    let url = STRICT
        .check_form("HTTPS://Example.COM:443/a/../hook?x=1")
        .unwrap();
    assert_eq!(
        url.as_str(),
        "https://example.com/hook?x=1",
        "stored normalised"
    );
}

#[test]
fn metadata_and_link_local_are_refused_even_with_private_allowed() {
    for raw in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.0.1/",
        "http://[fe80::1]/",
        "http://[febf::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.Google.Internal./",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::169.254.169.254]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://2852039166/",
    ] {
        let refused = LOCAL.check_form(raw).expect_err(raw);
        assert!(
            matches!(refused, UrlRefused::Metadata(_) | UrlRefused::LinkLocal(_)),
            "{raw}: {refused:?}"
        );
        assert!(STRICT.check_form(raw).is_err(), "{raw}");
    }
    for raw in [
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[ff02::1]/",
    ] {
        assert!(
            matches!(LOCAL.check_form(raw), Err(UrlRefused::NotUnicast(_))),
            "{raw}"
        );
    }
}

#[test]
fn loopback_and_private_ranges_need_private_subscribers_allowed() {
    for raw in [
        "http://127.0.0.1:8080/hook",
        "http://127.255.255.254/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://100.127.255.255/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://192.0.2.1/",
        "http://[2001:db8::1]/",
        // A translation of a public address is still a hop through someone's gateway.
        "http://[::8.8.8.8]/",
    ] {
        assert!(
            matches!(STRICT.check_form(raw), Err(UrlRefused::Private(_))),
            "{raw}: {:?}",
            STRICT.check_form(raw)
        );
        assert!(LOCAL.check_form(raw).is_ok(), "{raw}");
    }
}

#[test]
fn public_addresses_pass_both_ways() {
    for raw in [
        "https://8.8.8.8/hook",
        "http://172.32.0.1/",
        "http://172.15.255.255/",
        "http://100.128.0.1/",
        "http://169.255.0.1/",
        "http://192.169.0.1/",
        "http://[2606:4700::1111]/",
        "http://[64:ff9b::8.8.8.8]/",
        "http://[2002:0808:0808::1]/",
    ] {
        assert!(
            STRICT.check_form(raw).is_ok(),
            "{raw}: {:?}",
            STRICT.check_form(raw)
        );
        assert!(LOCAL.check_form(raw).is_ok(), "{raw}");
    }
}

#[tokio::test]
async fn names_are_judged_by_every_address_they_resolve_to() {
    let refused = STRICT.check("http://localhost:9/hook").await.unwrap_err();
    assert!(matches!(refused, UrlRefused::Private(_)), "{refused:?}");
    let url = LOCAL.check("http://localhost:9/hook").await.unwrap();
    assert_eq!(url.host_str(), Some("localhost"));
    assert!(matches!(
        LOCAL.check("http://metadata.google.internal/").await,
        Err(UrlRefused::Metadata(_))
    ));
}

#[tokio::test]
async fn the_delivery_resolver_applies_the_same_rule() {
    let name: Name = "localhost".parse().unwrap();
    let refused = CheckedResolver(STRICT).resolve(name).await;
    let err = refused.err().expect("loopback refused").to_string();
    assert!(err.contains("loopback or private"), "{err}");
    let name: Name = "localhost".parse().unwrap();
    let addrs: Vec<SocketAddr> = CheckedResolver(LOCAL)
        .resolve(name)
        .await
        .unwrap()
        .collect();
    assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
}
