//! End-to-end test support: start `countersign-local` as a real process on a free port, talk to it
//! over HTTP, and read the events it prints; and the moto_server of the AWS adapter tests
//! ([`moto`]), and the Prism mock servers of the Zigned adapter tests ([`prism`]).

pub mod dynamodb;
pub mod faults;
pub mod moto;
pub mod prism;
pub mod zigned;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The repository's root, found when the test runs: the directory of the package under test
/// (`CARGO_MANIFEST_DIR`, which cargo sets for every test process) or the working directory, and
/// its parents, up to the one holding `scripts/moto`. Never a path baked in at compile time: a
/// target directory reused across clones may hold a test binary built in another one.
/// An HTTP client for the tests, on the workspace's one TLS stack: rustls on aws-lc-rs, made the
/// process's default (reqwest is built without a crypto provider of its own).
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

/// [`http_client`]'s builder, for tests that set timeouts or proxies of their own.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Already installed by an earlier call: that one is the same provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
}

pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .expect("a working directory");
    start
        .ancestors()
        .find(|dir| dir.join("scripts/moto").is_file() && dir.join("Cargo.toml").is_file())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "no repository root (with scripts/moto) above {}",
                start.display()
            )
        })
}

/// How long the process may take to say it listens (a cold debug binary starts in milliseconds;
/// this only bounds a broken start).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a test waits for an asynchronous effect (a queued callback, a sweep).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `countersign-local`, killed when dropped.
pub struct LocalProcess {
    child: Child,
    pub base_url: String,
    events: Arc<Mutex<Vec<Value>>>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl LocalProcess {
    /// Starts `binary` with `env` on port 0 and waits for its "listening on" line.
    pub fn start(binary: &str, env: &[(&str, &str)]) -> LocalProcess {
        let mut command = Command::new(binary);
        command
            .env("COUNTERSIGN_PORT", "0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));

        let events = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event: Value = serde_json::from_str(&line).unwrap_or_else(|error| {
                    panic!("stdout line is not an event ({error}): {line}")
                });
                sink.lock().unwrap().push(event);
            }
        });

        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let (address_tx, address_rx) = mpsc::channel();
        let log_sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("countersign-local listening on ") {
                    let _ = address_tx.send(url.trim().to_owned());
                }
                log_sink.lock().unwrap().push(line);
            }
        });

        let base_url = match address_rx.recv_timeout(START_TIMEOUT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "countersign-local did not report listening within {START_TIMEOUT:?} (exit: {status:?}); stderr:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        LocalProcess {
            child,
            base_url,
            events,
            logs,
        }
    }

    /// Every event printed so far, in print order.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// The events of one agreement, in print order.
    pub fn events_of(&self, agreement_id: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|event| event["detail"]["agreement_id"] == agreement_id)
            .collect()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn client(&self, api_key: &str) -> Client {
        Client {
            http: http_client(),
            base_url: self.base_url.clone(),
            api_key: api_key.to_owned(),
        }
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// `data` of a success envelope.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// `error.type` of an error body.
    pub fn error_type(&self) -> &str {
        self.body["error"]["type"].as_str().unwrap_or("")
    }
}

/// An HTTP client for one tenant's API key.
pub struct Client {
    http: reqwest::Client,
    pub base_url: String,
    api_key: String,
}

impl Client {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        Self::read(
            request
                .send()
                .await
                .expect("request reaches countersign-local"),
        )
        .await
    }

    pub async fn send_raw(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::read(
            request
                .send()
                .await
                .expect("request reaches countersign-local"),
        )
        .await
    }

    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("body is not JSON ({error}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[]).await
    }

    /// Creates an agreement from `body` and returns its id (asserting 201).
    pub async fn create(&self, body: &Value) -> String {
        let reply = self.post("/agreements", body).await;
        assert_eq!(reply.status, 201, "create: {:?}", reply.body);
        reply.data()["id"].as_str().expect("an id").to_owned()
    }

    pub async fn agreement(&self, id: &str) -> Value {
        let reply = self.get(&format!("/agreements/{id}")).await;
        assert_eq!(reply.status, 200, "get {id}: {:?}", reply.body);
        reply.data().clone()
    }

    pub async fn lifecycle(&self, id: &str, body: Value) -> Reply {
        self.post(&format!("/agreements/{id}/lifecycle"), &body)
            .await
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        let reply = self.get(&format!("/agreements/{id}/history")).await;
        assert_eq!(reply.status, 200, "history {id}: {:?}", reply.body);
        reply.data().as_array().expect("a list").clone()
    }

    /// Polls the agreement until `done` holds, or panics with the last state seen.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let agreement = self.agreement(id).await;
            if done(&agreement) {
                return agreement;
            }
            if Instant::now() > deadline {
                panic!("agreement {id} never reached {what}; last seen: {agreement:#}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// `Countersign-Signature` for `body`, computed here independently of the server's code.
pub fn sandbox_signature(secret: &[u8], body: &[u8]) -> String {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    sandbox_signature_at(secret, timestamp, body)
}

pub fn sandbox_signature_at(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}
