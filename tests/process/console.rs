//! The operations console in a real headless Chromium, against the real binary: the Python
//! script `console/browser.py` (selenium, pinned in scripts/requirements-dev.txt; Debian's
//! `chromium` and `chromium-driver`, installed by .ci/run) drives the page as an operator
//! would, with identity on (an admin token entered once) and off (no prompt). Here: the
//! service's start, the admin-only refusals of the console's API, and the screenshot.
//!
//! The screenshot goes to `target/tmp/console/console.png` (printed); with
//! `ORDERS_WRITE_SCREENSHOT=1` also to docs/images/console.png, the README's picture.

use orders_test_support as common;

use common::process::{Workdir, bin};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Fast sagas: retries in hundredths of their delays, the warehouse packing at once; the
/// payment that never answers still waits 90 s, long enough to be cancelled from the page.
const FAST: [&str; 6] = [
    "--retry-delay-scale",
    "0.01",
    "--timeout-scale",
    "0.1",
    "--warehouse-packing-ms",
    "5",
];

fn python() -> PathBuf {
    let path = Path::new(ROOT).join(".venv/bin/python");
    assert!(
        path.exists(),
        "{} not found: run scripts/setup-venv.sh (it installs selenium)",
        path.display()
    );
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            Path::new(tool).exists(),
            "{tool} not found: apt-get install chromium chromium-driver (.ci/run does)"
        );
    }
    path
}

/// Runs the browser script against `base`; panics with its output unless it passed.
fn browse(base: &str, token: Option<&str>, screenshots: &[PathBuf], quick: bool) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(Path::new(ROOT).join("tests/process/console/browser.py"))
        .arg(base);
    if let Some(token) = token {
        cmd.args(["--token", token]);
    }
    for path in screenshots {
        cmd.arg("--screenshot").arg(path);
    }
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().expect("python starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the browser run failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn dev_tokens(dir: &Path) -> (String, String) {
    let keys = dir.join("keys");
    let made = Command::new(bin())
        .args(["dev-keys", "--dir"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let token = |extra: &[&str]| {
        let out = Command::new(bin())
            .args(["dev-token", "--dir"])
            .arg(&keys)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    (
        token(&["--sub", "ops-admin", "--admin"]),
        token(&["--sub", "cust-alice"]),
    )
}

fn screenshot_paths() -> Vec<PathBuf> {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&out).unwrap();
    let mut paths = vec![out.join("console.png")];
    if std::env::var("ORDERS_WRITE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = Path::new(ROOT).join("docs/images");
        std::fs::create_dir_all(&docs).unwrap();
        paths.push(docs.join("console.png"));
    }
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_watches_and_cancels_orders_in_a_real_browser_with_identity_on() {
    let work = Workdir::new("console.db");
    let (admin, customer) = dev_tokens(work.dir.path());
    let jwks = work.dir.path().join("keys/jwks.json");
    let jwks = jwks.to_str().unwrap();
    let env = [
        ("ORDERS_AUTH", "jwt"),
        ("ORDERS_JWKS", jwks),
        ("ORDERS_JWT_ISSUER", "orders-dev"),
        ("ORDERS_JWT_AUDIENCE", "orders"),
    ];
    let log = work.dir.path().join("server.log");
    let server = work.start_logging(&FAST, &env, &log).await;

    // The page is open; what it shows is an admin's.
    let client = common::process::http_client();
    let page = client
        .get(format!("{}/console", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    for path in ["/admin/orders", "/outbox/parked"] {
        let url = format!("{}{path}", server.base);
        let anonymous = client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{path} without a token");
        let customer = client
            .get(&url)
            .bearer_auth(&customer)
            .send()
            .await
            .unwrap();
        assert_eq!(customer.status(), 403, "{path} for a customer");
        let admin = client.get(&url).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(admin.status(), 200, "{path} for an admin");
    }

    let shots = screenshot_paths();
    let base = server.base.clone();
    let (token, paths) = (admin.clone(), shots.clone());
    let seen = tokio::task::spawn_blocking(move || browse(&base, Some(&token), &paths, false))
        .await
        .unwrap();
    println!("browser: {seen}");
    for path in &shots {
        assert!(path.is_file(), "no screenshot at {}", path.display());
        println!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_identity_off_the_page_asks_for_no_token() {
    let work = Workdir::new("console-open.db");
    let server = work.start(&FAST, &[]).await;
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&out).unwrap();
    let shot = vec![out.join("console-open.png")];
    let base = server.base.clone();
    let seen = tokio::task::spawn_blocking(move || browse(&base, None, &shot, true))
        .await
        .unwrap();
    println!("browser: {seen}");
}
