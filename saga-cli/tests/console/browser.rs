//! A real headless Chromium, driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: requests on fd 3, answers and events on fd 4, each a JSON text
//! ended by a NUL byte). No crate: a few commands are all the tests need. A confirmation the
//! page asks for (`window.confirm`) is accepted and remembered. If the test fails, the page is
//! saved as a screenshot and as HTML in a temporary directory, named on stderr.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The Chromium to drive: `SAGA_CHROMIUM`, or `chromium` on the PATH (Debian's package).
fn chromium() -> String {
    std::env::var("SAGA_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

pub(crate) struct Browser {
    child: Child,
    requests: ChildStdin,
    answers: Receiver<Value>,
    next: u64,
    session: String,
    /// The messages of the confirmations accepted so far.
    pub(crate) confirmed: Vec<String>,
    /// What the failure artefacts are called.
    name: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A new headless Chromium with an empty profile and one blank page; `name` names its
    /// screenshots. With no Chromium here, `None` and a message (a failure under `CI=true`).
    pub(crate) fn open(name: &str) -> Option<Browser> {
        if Command::new(chromium()).arg("--version").output().is_err() {
            let missing = format!(
                "{}: no Chromium here (apt-get install chromium, or set SAGA_CHROMIUM); the browser test is skipped",
                chromium()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
            eprintln!("{missing}");
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        // fd 3 and 4 are the pipe's ends, made from stdin and stdout by the shell.
        let script = r#"exec "$0" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --disable-dev-shm-usage --window-size=1280,1000 --user-data-dir="$1" \
            --remote-debugging-pipe 3<&0 4>&1 0</dev/null 1>/dev/null"#;
        let mut child = Command::new("sh")
            .args(["-c", script, &chromium(), profile.path().to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {}: {e} (install Debian's chromium, or set SAGA_CHROMIUM)", chromium())
            });
        let requests = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        message.pop();
                        if let Ok(value) = serde_json::from_slice::<Value>(&message)
                            && tx.send(value).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        let mut browser = Browser {
            child,
            requests,
            answers,
            next: 0,
            session: String::new(),
            confirmed: Vec::new(),
            name: name.to_owned(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call("Target.attachToTarget", json!({ "targetId": target, "flatten": true }));
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        Some(browser)
    }

    /// Sends `method` and waits for its answer, accepting any confirmation asked meanwhile.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.answer(method, params).unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// Sends `method` and waits for its answer: its result, or the error Chromium gave.
    fn answer(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next += 1;
        let id = self.next;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            request["sessionId"] = self.session.clone().into();
        }
        let mut bytes = serde_json::to_vec(&request).unwrap();
        bytes.push(0);
        self.requests.write_all(&bytes).unwrap();
        self.requests.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .answers
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{method}: no answer from Chromium"));
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(error.clone());
                }
                return Ok(message["result"].clone());
            }
            if message["method"] == "Page.javascriptDialogOpening" {
                self.confirmed.push(message["params"]["message"].as_str().unwrap_or_default().to_owned());
                let accept = json!({ "id": 0, "method": "Page.handleJavaScriptDialog", "params": { "accept": true }, "sessionId": self.session });
                let mut bytes = serde_json::to_vec(&accept).unwrap();
                bytes.push(0);
                self.requests.write_all(&bytes).unwrap();
            }
        }
    }

    /// Opens `url` and waits for it to load.
    pub(crate) fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for(
            "document.readyState === 'complete' && location.href !== 'about:blank'",
            "the page to load",
        );
    }

    /// The value of the JavaScript `expression` in the page (awaited if a promise).
    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits up to 30 s for `condition` (JavaScript) to be true in the page.
    pub(crate) fn wait_for(&mut self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let guarded =
            format!("(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()");
        let ask = json!({ "expression": guarded, "returnByValue": true });
        while Instant::now() < deadline {
            // A page that navigates while it is asked answers with an error (its context is
            // gone): not yet, as a false condition is.
            if let Ok(answer) = self.answer("Runtime.evaluate", ask.clone())
                && answer["result"]["value"] == Value::Bool(true)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("waited 30 s for {what} ({condition})");
    }

    /// Clicks the element `selector` names. The element is found and clicked in one turn of
    /// the page's own work, so that a live part read again in between cannot move it from
    /// under the click; the click is the element's own (a form's button submits the form,
    /// through its confirmation).
    pub(crate) fn click(&mut self, selector: &str) {
        let found = format!("document.querySelector({})", serde_json::to_string(selector).unwrap());
        self.wait_for(&format!("{found} !== null"), selector);
        self.eval(&format!(
            "(() => {{ const e = {found}; e.scrollIntoView({{block: 'center'}}); e.click(); }})()"
        ));
    }

    /// Types `text` into the field `selector` names, as a keyboard would.
    pub(crate) fn fill(&mut self, selector: &str, text: &str) {
        let found = format!("document.querySelector({})", serde_json::to_string(selector).unwrap());
        self.wait_for(&format!("{found} !== null"), selector);
        self.eval(&format!("{found}.focus()"));
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// The page as a PNG.
    fn screenshot(&mut self) -> Vec<u8> {
        let shot =
            self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true }));
        base64(shot["data"].as_str().unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let dir = std::env::temp_dir().join("saga-console-screenshots");
            let _ = std::fs::create_dir_all(&dir);
            let png = dir.join(format!("{}.png", self.name));
            let html = dir.join(format!("{}.html", self.name));
            // A browser that stopped answering leaves no picture; the test has failed anyway.
            let page = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (self.screenshot(), self.eval("document.documentElement.outerHTML"))
            }));
            if let Ok((shot, dom)) = page {
                let _ = std::fs::write(&png, shot);
                let _ = std::fs::write(&html, dom.as_str().unwrap_or_default());
                eprintln!("the page when the test failed: {} and {}", png.display(), html.display());
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 decoded (what the protocol sends a screenshot as).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
