//! The settings as parsed: defaults, refusals, and what reaches the stack.

use super::*;

#[test]
fn defaults_match_the_design() {
    let c = Config::try_parse_from(["orders"]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
    assert_eq!(c.database, PathBuf::from("./data/orders.db"));
    assert_eq!(c.idempotency_ttl_secs, 600);
    assert!(!c.require_idempotency_key);
    assert_eq!(c.body_limit, 65_536);
    assert_eq!(c.max_in_flight, 1024);
    assert_eq!(c.request_timeout_secs, 10);
    assert_eq!(c.max_connections, 4096);
    assert_eq!(c.client_idle_timeout_secs, 30);
    assert_eq!(c.sqlite_options(), Default::default());
    assert_eq!(c.executor_options().timeout_scale, 1.0);
}

#[test]
fn bad_values_are_refused() {
    assert!(Config::try_parse_from(["orders", "--listen", "nowhere"]).is_err());
    assert!(Config::try_parse_from(["orders", "--idempotency-ttl-secs", "0"]).is_err());
    assert!(Config::try_parse_from(["orders", "--require-idempotency-key", "maybe"]).is_err());
    assert!(Config::try_parse_from(["orders", "--payment-transient-error-rate", "1.5"]).is_err());
    assert!(Config::try_parse_from(["orders", "--retry-delay-scale", "-1"]).is_err());
    for bad in ["0", "-1", "NaN", "inf", "101"] {
        assert!(
            Config::try_parse_from(["orders", "--timeout-scale", bad]).is_err(),
            "{bad}"
        );
    }
    let scaled = Config::try_parse_from(["orders", "--timeout-scale", "0.01"]).unwrap();
    assert_eq!(scaled.executor_options().timeout_scale, 0.01);
    assert!(Config::try_parse_from(["orders", "--max-in-flight", "0"]).is_err());
    assert!(Config::try_parse_from(["orders", "--request-timeout-secs", "0"]).is_err());
    assert!(Config::try_parse_from(["orders", "--wal-autocheckpoint", "10"]).is_err());
    assert!(Config::try_parse_from(["orders", "--max-db-size", "4096"]).is_err());
    let capped = Config::try_parse_from(["orders", "--max-db-size", "8388608"]).unwrap();
    assert_eq!(capped.sqlite_options().max_db_bytes, Some(8_388_608));
    let c = Config::try_parse_from(["orders", "--require-idempotency-key"]).unwrap();
    assert!(c.require_idempotency_key);
}

#[test]
fn actor_settings_default_to_the_simulator_and_fast_actors() {
    use crate::local::assemble::Provider;
    use orders_workflow::steps::payment::http::ProviderKey;
    let c = Config::try_parse_from(["orders"]).unwrap();
    assert!(c.payment_webhook_secret.is_none());
    let local = c.local_settings(c.api_settings(), WebhookSecret::generate().unwrap());
    assert_eq!(
        local.actors.provider,
        Provider::Simulator {
            listen: "127.0.0.1:0".parse().unwrap(),
            delay: Duration::from_millis(50)
        }
    );
    assert_eq!(local.actors.packing, Duration::from_millis(50));
    assert_eq!(local.actors.failure_rate, 0.0);

    let secret = WebhookSecret::generate().unwrap().to_string();
    let c = Config::try_parse_from([
        "orders",
        "--payment-webhook-secret",
        &secret,
        "--payment-provider-url",
        "http://127.0.0.1:9/sim",
        "--payment-provider-key",
        "sk_test_0123456789abcdef",
        "--warehouse-failure-rate",
        "1",
        "--warehouse-packing-ms",
        "0",
    ])
    .unwrap();
    let api = c.api_settings();
    let parsed = api.payment_webhook_secret.as_ref().expect("secret");
    assert_eq!(parsed.to_string(), secret);
    let local = c.local_settings(api, WebhookSecret::generate().unwrap());
    let want = reqwest::Url::parse("http://127.0.0.1:9/sim/").unwrap();
    let key = ProviderKey::parse("sk_test_0123456789abcdef").ok();
    assert_eq!(local.actors.provider, Provider::External { url: want, key });
    assert_eq!(local.actors.failure_rate, 1.0);
    assert_eq!(local.actors.packing, Duration::ZERO);
    let short = ["orders", "--payment-provider-key", "sk_short"];
    let err = Config::try_parse_from(short).unwrap_err().to_string();
    assert!(err.contains("at least 16"), "{err}");
}

#[test]
fn bad_actor_settings_are_refused() {
    for args in [
        &["--payment-webhook-secret", "not-a-secret"][..],
        &["--payment-webhook-secret", "whsec_c2hvcnQ="],
        &["--payment-provider-url", "ftp://127.0.0.1/"],
        &["--payment-provider-url", "nowhere"],
        &["--payment-sim-delay-ms", "-1"],
        &["--warehouse-failure-rate", "1.5"],
        &["--warehouse-packing-ms", "x"],
        &["--warehouse-concurrency", "0"],
        &["--payment-sim-listen", "nowhere"],
    ] {
        let argv = std::iter::once("orders").chain(args.iter().copied());
        assert!(Config::try_parse_from(argv).is_err(), "{args:?}");
    }
}

#[test]
fn help_hides_the_secret_from_the_environment() {
    use clap::CommandFactory;
    let help = Config::command().render_long_help().to_string();
    assert!(help.contains("ORDERS_PAYMENT_WEBHOOK_SECRET"), "{help}");
    assert!(help.contains("--warehouse-failure-rate"), "{help}");
    let arg = Config::command()
        .get_arguments()
        .find(|a| a.get_id() == "payment_webhook_secret")
        .cloned()
        .expect("the secret's flag");
    assert!(arg.is_hide_env_values_set());
}

#[test]
fn parked_events_takes_the_database_after_the_command() {
    let c = Config::try_parse_from(["orders", "parked-events", "--database", "/tmp/x.db"]).unwrap();
    assert_eq!(c.command, Some(Command::ParkedEvents));
    assert_eq!(c.database, PathBuf::from("/tmp/x.db"));
    assert_eq!(Config::try_parse_from(["orders"]).unwrap().command, None);
}

#[test]
fn delivery_settings_default_to_public_subscribers_and_sixteen_in_flight() {
    use crate::local::deliveries::DeliverySettings;
    let c = Config::try_parse_from(["orders"]).unwrap();
    assert_eq!(c.delivery_settings(), DeliverySettings::default());
    assert_eq!(
        DeliverySettings::default(),
        DeliverySettings {
            concurrency: 16,
            delay_scale: 1.0,
            allow_private: false
        }
    );
    let c = Config::try_parse_from([
        "orders",
        "--allow-private-subscribers",
        "--delivery-concurrency",
        "256",
        "--retry-delay-scale",
        "0.001",
    ])
    .unwrap();
    let local = c.local_settings(c.api_settings(), WebhookSecret::generate().unwrap());
    assert_eq!(
        local.deliveries,
        DeliverySettings {
            concurrency: 256,
            delay_scale: 0.001,
            allow_private: true
        }
    );
    let explicit = ["orders", "--allow-private-subscribers", "false"];
    assert!(
        !Config::try_parse_from(explicit)
            .unwrap()
            .allow_private_subscribers
    );
    for bad in [
        &["--delivery-concurrency", "0"][..],
        &["--delivery-concurrency", "257"],
        &["--allow-private-subscribers", "maybe"],
    ] {
        let argv = std::iter::once("orders").chain(bad.iter().copied());
        assert!(Config::try_parse_from(argv).is_err(), "{bad:?}");
    }
}

#[test]
fn the_page_cache_settings_reach_the_store() {
    let c = Config::try_parse_from([
        "orders",
        "--writer-cache-mib",
        "4",
        "--reader-cache-mib",
        "1",
        "--readers",
        "3",
        "--reader-mmap-mib",
        "16",
    ])
    .unwrap();
    let o = c.sqlite_options();
    assert_eq!(
        (
            o.writer_cache_kib,
            o.reader_cache_kib,
            o.max_readers,
            o.reader_mmap_bytes
        ),
        (4096, 1024, 3, 16 << 20)
    );
    let defaults = Config::try_parse_from(["orders"]).unwrap().sqlite_options();
    assert_eq!(defaults, orders_sqlite::SqliteOptions::default());
    for flag in ["--writer-cache-mib", "--reader-cache-mib", "--readers"] {
        assert!(
            Config::try_parse_from(["orders", flag, "0"]).is_err(),
            "{flag}"
        );
    }
    // More than SQLite maps would be a setting that silently does less.
    assert!(Config::try_parse_from(["orders", "--reader-mmap-mib", "2048"]).is_err());
}

// Retention.
#[test]
fn retention_keeps_thirty_days_by_default_at_least_one_and_seconds_for_drills() {
    let day = Duration::from_secs(86_400);
    let c = Config::try_parse_from(["orders"]).unwrap();
    assert_eq!(c.retention().keep, 30 * day);
    let week = Config::try_parse_from(["orders", "--retention-days", "7"]).unwrap();
    assert_eq!(week.retention().keep, 7 * day);
    for bad in ["0", "-1", "1.5", "36501"] {
        assert!(
            Config::try_parse_from(["orders", "--retention-days", bad]).is_err(),
            "{bad}"
        );
    }
    let drill =
        Config::try_parse_from(["orders", "--retention-days", "7", "--retention-secs", "90"])
            .unwrap();
    assert_eq!(drill.retention().keep, Duration::from_secs(90));
    assert!(Config::try_parse_from(["orders", "--retention-secs", "0"]).is_err());
    use clap::CommandFactory;
    let help = Config::command().render_long_help().to_string();
    assert!(help.contains("--retention-days") && help.contains("ORDERS_RETENTION_DAYS"));
    assert!(
        !help.contains("--retention-secs"),
        "a drill setting, not in --help"
    );
}
