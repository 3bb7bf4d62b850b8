//! A real browser for the console's tests: headless Chromium driven by chromedriver
//! over the W3C WebDriver protocol (JSON over HTTP on loopback).
//!
//! The client is this module, on the `ureq` the other tests already use, rather than
//! an async WebDriver crate: the tests are synchronous like the rest of the suite,
//! and the commands they need are a dozen plain requests. The one non-W3C command is
//! chromedriver's `se/log` (the browser console's entries), which the W3C protocol
//! has no word for.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key of an element reference in W3C WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session, ended (and its chromedriver stopped) when dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

/// A program on `PATH`, if there is one.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (Debian's `chromium` and
    /// `chromium-driver` packages), or says why it cannot.
    pub fn start() -> Result<Browser, String> {
        let driver_bin = on_path("chromedriver").ok_or("chromedriver is not installed")?;
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| on_path(name))
            .ok_or("chromium is not installed")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", driver_bin.display()))?;
        let profile = tempfile::tempdir().map_err(|e| format!("profile directory: {e}"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            agent,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .agent
                .get(format!("{}/status", browser.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready in 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--window-size=1440,900",
                        "--lang=zh-CN",
                        format!("--user-data-dir={}", browser._profile.path().display()),
                    ],
                },
                "goog:loggingPrefs": { "browser": "ALL" },
            }}
        });
        let answer = browser
            .raw("POST", "/session", Some(capabilities))
            .map_err(|e| format!("chromium did not start: {e}"))?;
        browser.session = answer["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {answer}"))?
            .to_owned();
        Ok(browser)
    }

    /// A command at `path` (under `/session/{id}` unless it starts with `/session`).
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(body.unwrap_or(json!({}))),
        };
        let mut response = response.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let value: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| format!("{method} {path}: {e}"))?;
        if status >= 400 {
            return Err(format!("{method} {path}: {status} {}", value["value"]));
        }
        Ok(value["value"].clone())
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .expect("navigate");
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .unwrap_or_else(|e| panic!("script {script:?}: {e}"))
    }

    /// Waits until `condition` (a JavaScript expression) is truthy, for `what`.
    pub fn wait(&self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let script = format!("return Boolean({condition});");
        while self.script(&script, json!([])) != true {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} ({condition}); page errors: {:?}",
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element `css` matches, waiting for it to appear.
    fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(found) = self.cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            ) && let Some(id) = found[ELEMENT].as_str()
            {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element `css` matches (once it is there and visible).
    pub fn click(&self, css: &str) {
        self.wait(
            &format!("(e => e && e.offsetParent !== null)(document.querySelector({css:?}))"),
            &format!("{css} to be visible"),
        );
        // The console re-renders lists when a push notice arrives: an element found
        // just before may be replaced by its twin; find it again.
        let mut attempts = 0;
        loop {
            let id = self.element(css);
            match self.cmd("POST", &format!("/element/{id}/click"), None) {
                Ok(_) => return,
                Err(e) if e.contains("stale") && attempts < 5 => attempts += 1,
                Err(e) => panic!("click {css}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` into the element `css` matches, after clearing it.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.cmd("POST", &format!("/element/{id}/clear"), None)
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The text of the element `css` matches.
    pub fn text(&self, css: &str) -> String {
        let id = self.element(css);
        self.cmd("GET", &format!("/element/{id}/text"), None)
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves what the browser shows as a PNG at `path`.
    pub fn screenshot(&self, path: &Path) {
        let data = self.cmd("GET", "/screenshot", None).expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("writing the screenshot");
    }

    /// The page's errors since the last call: the browser console's errors
    /// (chromedriver's log: exceptions, CSP violations, failed scripts — a refused API
    /// call the console handles is the network's, not a script's, and is left out)
    /// and what the console's own `errors.js` recorded.
    pub fn errors(&self) -> Vec<String> {
        let mut errors: Vec<String> = self
            .cmd("POST", "/se/log", Some(json!({ "type": "browser" })))
            .unwrap_or_else(|e| vec![Value::String(format!("no browser log: {e}"))].into())
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|entry| {
                entry["level"] == "SEVERE"
                    && !entry["message"].as_str().is_some_and(|m| {
                        m.contains(
                            "Failed to load resource: the server responded with a status of 4",
                        )
                    })
            })
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        if let Some(recorded) = self
            .script(
                "const e = window.wanggeErrors || []; return e.splice(0, e.length);",
                json!([]),
            )
            .as_array()
        {
            errors.extend(
                recorded
                    .iter()
                    .map(|e| format!("page: {}", e.as_str().unwrap_or_default())),
            );
        }
        errors
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
