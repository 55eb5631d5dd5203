//! Prism (`@stoplight/prism-cli`), serving Zigned's published OpenAPI documents for the Zigned
//! adapter's tests: it validates every request against the document and answers with its
//! examples (or, dynamic, with generated values: distinct ids). One Prism per document and mode
//! per test process, started by `scripts/prism` (which installs Prism with npm on first use) and
//! stopped when the test process ends. Failing to get one fails the test: never a silent skip.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// The header in which Prism lists what a request broke in the document.
pub const VIOLATIONS_HEADER: &str = "sl-violations";

/// What Prism's `sl-violations` header values say the request broke, one line each. Prism also
/// lists what its own generated answers break (`"location": ["response", ...]`): those are left
/// out, only the request is the caller's doing. A value that is not Prism's JSON list is kept
/// whole.
pub fn request_violations<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut violations = Vec::new();
    for text in values {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Array(listed)) => violations.extend(
                listed
                    .into_iter()
                    .filter(|violation| {
                        violation.pointer("/location/0").and_then(|v| v.as_str())
                            != Some("response")
                    })
                    .map(|violation| violation.to_string()),
            ),
            _ => violations.push(text.to_owned()),
        }
    }
    violations
}

/// `<repo>/../shared/providers/zigned`: CI puts `shared/` beside the clone.
pub fn zigned_documents_dir() -> PathBuf {
    let dir = crate::repo_root().join("../shared/providers/zigned");
    assert!(
        dir.join("rest-api-v3.openapi.yaml").is_file()
            && dir.join("oauth-token.openapi.yaml").is_file(),
        "Zigned's OpenAPI documents are missing: expected rest-api-v3.openapi.yaml and \
         oauth-token.openapi.yaml in {} (shared/ beside the repository)",
        dir.display()
    );
    dir
}

/// Prism for Zigned's REST API v3 answering with the document's examples; e.g.
/// `http://127.0.0.1:PORT`, the base URL (paths as `/agreements`).
pub fn zigned_api() -> String {
    endpoint("rest-api-v3.openapi.yaml", false)
}

/// Prism for Zigned's REST API v3 answering with generated values (distinct ids).
pub fn zigned_api_dynamic() -> String {
    endpoint("rest-api-v3.openapi.yaml", true)
}

/// The token URL on a Prism serving Zigned's OAuth token document.
pub fn zigned_token_url() -> String {
    format!("{}/token", endpoint("oauth-token.openapi.yaml", false))
}

fn endpoint(document: &str, dynamic: bool) -> String {
    static STARTED: Mutex<BTreeMap<(String, bool), String>> = Mutex::new(BTreeMap::new());
    // Held while starting, so that concurrent tests share one Prism per document and mode.
    let mut started = STARTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    started
        .entry((document.to_owned(), dynamic))
        .or_insert_with(|| start(document, dynamic))
        .clone()
}

fn start(document: &str, dynamic: bool) -> String {
    let spec = zigned_documents_dir().join(document);
    let script = crate::repo_root().join("scripts/prism");
    let script = script.display();
    let mut command = Command::new(script.to_string());
    command.arg("start");
    if dynamic {
        command.arg("-d");
    }
    let output = command
        .args(["--owner", &std::process::id().to_string()])
        .arg(&spec)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {script}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} could not start Prism for {} ({}); it needs node and npm.\n{stderr}",
        spec.display(),
        output.status
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("export COUNTERSIGN_PRISM_ENDPOINT="))
        .map(|endpoint| endpoint.trim().to_owned())
        .unwrap_or_else(|| panic!("{script} printed no endpoint:\n{stdout}\n{stderr}"))
}
