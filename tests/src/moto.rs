//! The moto_server the AWS adapter tests talk to: the one named by `COUNTERSIGN_MOTO_ENDPOINT`
//! (as `./scripts/test` exports it), else a private one started by `scripts/moto` for this test
//! process and stopped when it ends. Failing to get one fails the test: never a silent skip.

use std::process::Command;
use std::sync::OnceLock;

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub const ENDPOINT_VARIABLE: &str = "COUNTERSIGN_MOTO_ENDPOINT";

/// The endpoint, e.g. `http://127.0.0.1:5123`.
pub fn endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT
        .get_or_init(|| match std::env::var(ENDPOINT_VARIABLE) {
            Ok(endpoint) if !endpoint.trim().is_empty() => endpoint.trim().to_owned(),
            _ => start_private(),
        })
        .clone()
}

fn start_private() -> String {
    let script = crate::repo_root().join("scripts/moto");
    let script = script.display();
    let output = Command::new(script.to_string())
        .args(["start", "--owner", &std::process::id().to_string()])
        .output()
        .unwrap_or_else(|error| panic!("cannot run {script}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} could not start moto_server ({}); run ./scripts/test, or set {ENDPOINT_VARIABLE}.\n{stderr}",
        output.status
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("export {ENDPOINT_VARIABLE}=")))
        .map(|endpoint| endpoint.trim().to_owned())
        .unwrap_or_else(|| panic!("{script} printed no endpoint:\n{stdout}\n{stderr}"))
}

/// AWS SDK configuration for moto: its endpoint, us-east-1, static test credentials.
pub fn sdk_config() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("testing", "testing", None, None, "moto"),
            ),
        )
        .build()
}

/// A name no other test of this run uses (tables, queues and buses are shared by one moto).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new SQS queue on moto: its URL and ARN.
pub async fn queue(prefix: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    let url = sqs
        .create_queue()
        .queue_name(unique_name(prefix))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("a queue url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a queue arn");
    (url, arn)
}

/// Receives and deletes what `queue_url` holds: waits (up to 20 s) for `at_least` messages, then
/// takes what else is there, so a test also sees messages it did not expect.
pub async fn drain(queue_url: &str, at_least: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let sqs = aws_sdk_sqs::Client::new(&sdk_config());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut messages = Vec::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(if messages.len() >= at_least { 0 } else { 1 })
            .send()
            .await
            .expect("receive");
        let received = output.messages().to_vec();
        for message in &received {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
        let empty = received.is_empty();
        messages.extend(received);
        if (empty && messages.len() >= at_least) || std::time::Instant::now() > deadline {
            return messages;
        }
    }
}
