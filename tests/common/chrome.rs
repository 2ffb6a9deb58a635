//! A real headless Chromium driven through ChromeDriver, for the browser
//! tests: starting both, signing in, setting inputs as a person would,
//! waiting for the page, screenshots, and axe-core's accessibility check.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common;
use crate::common::web::TestApp;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The browser's own time zone, unlike alice's account (Europe/Amsterdam):
/// the form must start from the browser's.
pub const BROWSER_ZONE: &str = "America/New_York";
/// Generous: CI machines have two cores and other tests run beside this one.
pub const WAIT: Duration = Duration::from_secs(45);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// ChromeDriver as a child process, killed when dropped.
pub struct Driver {
    child: Child,
    pub port: u16,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Kills ChromeDriver's whole process group: a test that fails before
    /// closing its session would otherwise leave Chromium running.
    fn drop(&mut self) {
        let group = self.child.id() as i32;
        // SAFETY: a signal to a process group this test created.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_driver() -> Driver {
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .env("TZ", BROWSER_ZONE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, with the browsers it starts.
        .process_group(0)
        .spawn()
        .expect("chromedriver (Debian package chromium-driver) is needed for this test");
    let driver = Driver {
        child,
        port,
        profile: tempfile::tempdir().unwrap(),
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/status")).await
            && response.status().is_success()
        {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn browser(driver: &Driver) -> Client {
    let profile = driver.profile.path().display().to_string();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={profile}"),
            ]
        }
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a headless Chromium session")
}

pub struct Shots {
    pub dir: PathBuf,
}

impl Shots {
    pub fn new() -> Shots {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir }
    }

    pub async fn take(&self, client: &Client, name: &str) {
        // Whole page: grow the window to the document's height first.
        let height = client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(1000)
            .clamp(600, 6000);
        let (width, _) = client.get_window_size().await.unwrap();
        client
            .set_window_size(width as u32, height as u32 + 100)
            .await
            .unwrap();
        let png = client.screenshot().await.unwrap();
        std::fs::write(self.dir.join(format!("{name}.png")), png).unwrap();
        client.set_window_size(width as u32, 1000).await.unwrap();
    }
}

/// Waits until `script` returns true on the page.
pub async fn until(client: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Value::Bool(true)) = client.execute(script, vec![]).await {
            return;
        }
        if Instant::now() > deadline {
            let text = client
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!("waited in vain for {what}; the page says: {text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn text_of(client: &Client) -> String {
    client
        .execute("return document.body.innerText", vec![])
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub async fn sign_in(client: &Client, t: &TestApp, email: &str) {
    client.goto(&format!("{}/login", t.base)).await.unwrap();
    client
        .find(Locator::Css("#email"))
        .await
        .unwrap()
        .send_keys(email)
        .await
        .unwrap();
    client
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(common::web::PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        client,
        "the home page",
        "return !location.pathname.startsWith('/login')",
    )
    .await;
}

pub async fn sign_out(client: &Client) {
    client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        client,
        "the sign-in page",
        "return location.pathname === '/login'",
    )
    .await;
}

/// Sets a date or time input as a person picking it would, events included.
pub async fn set_input(client: &Client, id: &str, value: &str) {
    client
        .execute(
            "const el = document.getElementById(arguments[0]); el.value = arguments[1];
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![json!(id), json!(value)],
        )
        .await
        .unwrap();
}

pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// axe-core's own script, installed by `npm ci --prefix tests/axe` (which
/// `.ci/run` does).
pub fn axe_source() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/axe/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; `npm ci --prefix tests/axe` installs axe-core",
            path.display()
        )
    })
}

/// Injects axe-core into the page as it is now and runs all its rules:
/// each violation as "rule (impact): what it asks — where".
pub async fn accessibility_violations(client: &Client, axe: &str) -> Vec<String> {
    client.execute(axe, vec![]).await.expect("axe-core loads");
    let found = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then(function (r) {
                 done(r.violations.map(function (v) {
                   return v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
                     v.nodes.slice(0, 5).map(function (n) {
                       const why = n.any.concat(n.all).map(function (c) { return c.message; }).join('; ');
                       return n.target.join(' ') + ' (' + why + ')';
                     }).join(', ');
                 }));
               })
               .catch(function (e) { done(['axe-core failed: ' + e]); });",
            vec![],
        )
        .await
        .expect("axe-core runs");
    serde_json::from_value(found).expect("a list of violations")
}
