//! Runs the real function binaries against a local Lambda runtime API (`cargo lambda watch
//! --only-lambda-apis`, one per function) and invokes them with `cargo lambda invoke
//! --data-file`, on moto for DynamoDB, SQS, EventBridge and SSM.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use countersign_test_kit::moto;
use serde_json::{json, Value};

pub const TENANT: &str = "tenant-demo";
pub const SECRET: &str = "invoke-test-secret";

/// `cargo-lambda`, as `scripts/deploy-checks install` puts it into the project venv.
pub fn cargo_lambda() -> PathBuf {
    if let Ok(path) = std::env::var("COUNTERSIGN_CARGO_LAMBDA") {
        return PathBuf::from(path);
    }
    let venv = std::env::var("COUNTERSIGN_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/countersign/venv")
        });
    let path = venv.join("bin/cargo-lambda");
    if !path.exists() {
        let script = countersign_test_kit::repo_root().join("scripts/deploy-checks");
        let script = script.display();
        let status = Command::new(script.to_string())
            .arg("install")
            .status()
            .unwrap_or_else(|error| panic!("cannot run {script}: {error}"));
        assert!(
            status.success(),
            "{script} install failed: cargo-lambda is needed to invoke the functions"
        );
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The AWS resources one test run uses, each uniquely named on the shared moto.
pub struct Resources {
    pub sdk: SdkConfig,
    pub table: String,
    pub callback_queue_url: String,
    pub callback_queue_arn: String,
    pub bus: String,
    /// Subscribed to every countersign event on the bus.
    pub subscriber_queue_url: String,
    pub secret_parameter: String,
    pub documents_bucket: String,
}

impl Resources {
    pub async fn create() -> Resources {
        let sdk = moto::sdk_config();
        let table = moto::unique_name("countersign");
        countersign_store_dynamodb::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
            .await
            .expect("table");
        let (callback_queue_url, callback_queue_arn) = moto::queue("callbacks").await;
        let bus = moto::unique_name("bus");
        let events = aws_sdk_eventbridge::Client::new(&sdk);
        events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("bus");
        let (subscriber_queue_url, subscriber_arn) = moto::queue("subscriber").await;
        let rule = moto::unique_name("all-events");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus)
            .event_pattern(r#"{"source":["countersign"]}"#)
            .send()
            .await
            .expect("rule");
        events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("subscriber")
                    .arn(subscriber_arn)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("target");
        let secret_parameter = format!("/{}/webhook-secrets", moto::unique_name("countersign"));
        aws_sdk_ssm::Client::new(&sdk)
            .put_parameter()
            .name(&secret_parameter)
            .value(format!("{SECRET},an-older-test-secret"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("parameter");
        let documents_bucket = moto::unique_name("documents").to_lowercase();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        )
        .create_bucket()
        .bucket(&documents_bucket)
        .send()
        .await
        .expect("documents bucket");
        Resources {
            sdk,
            table,
            documents_bucket,
            callback_queue_url,
            callback_queue_arn,
            bus,
            subscriber_queue_url,
            secret_parameter,
        }
    }

    /// The environment template.yaml gives every function.
    pub fn environment(&self) -> Vec<(String, String)> {
        [
            ("TABLE_NAME", self.table.clone()),
            ("CALLBACK_QUEUE_URL", self.callback_queue_url.clone()),
            ("EVENT_BUS_NAME", self.bus.clone()),
            ("WEBHOOK_SECRET_PARAMETER", self.secret_parameter.clone()),
            ("SWEEP_PAGE_SIZE", "25".to_owned()),
            ("DOCUMENTS_BUCKET", self.documents_bucket.clone()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    pub fn store(&self) -> countersign_store_dynamodb::DynamoStore {
        countersign_store_dynamodb::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.table,
        )
    }

    /// An SQS Lambda event made of real received messages.
    pub fn sqs_event(&self, messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> String {
        let records: Vec<Value> = messages
            .iter()
            .map(|message| {
                json!({
                    "messageId": message.message_id(),
                    "receiptHandle": message.receipt_handle(),
                    "body": message.body(),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": message.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        json!({ "Records": records }).to_string()
    }
}

/// One function: its runtime API (`cargo lambda watch --only-lambda-apis`) and its real binary.
pub struct Function {
    pub name: String,
    port: u16,
    runtime: Child,
    binary: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Function {
    pub fn start(name: &str, binary: &str, environment: &[(String, String)]) -> Function {
        let port = free_port();
        let runtime = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo lambda watch starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the runtime API of {name} never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let endpoint = moto::endpoint();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (variable, value) in environment {
            command.env(variable, value);
        }
        let mut binary_process = command
            .spawn()
            .unwrap_or_else(|error| panic!("{binary}: {error}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(binary_process.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(binary_process.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        Function {
            name: name.to_owned(),
            port,
            runtime,
            binary: binary_process,
            logs,
        }
    }

    /// `cargo lambda invoke --data-file` with `payload`; the function's response as JSON.
    pub fn invoke(&self, payload: &str) -> Value {
        // One file per invocation: tests run in parallel, and two of them invoking the same
        // function removed each other's file before cargo lambda read it (seen in a full run).
        static INVOCATIONS: AtomicU64 = AtomicU64::new(0);
        let file = std::env::temp_dir().join(format!(
            "countersign-invoke-{}-{}-{}.json",
            self.name,
            std::process::id(),
            INVOCATIONS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&file, payload).unwrap();
        let output = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "_",
                "--invoke-address",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "--data-file",
            ])
            .arg(&file)
            .output()
            .expect("cargo lambda invoke runs");
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "invoking {} failed: {}\n{stdout}\nfunction logs:\n{}",
            self.name,
            String::from_utf8_lossy(&output.stderr),
            self.logs.lock().unwrap().join("\n")
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
            panic!("{}'s response is not JSON ({error}): {stdout}", self.name)
        })
    }

    /// Invokes an HTTP function; its status and JSON body.
    pub fn http(&self, payload: &str) -> (u16, Value) {
        let response = self.invoke(payload);
        let status = response["statusCode"].as_u64().expect("statusCode") as u16;
        let body = response["body"]
            .as_str()
            .map(|body| serde_json::from_str(body).expect("a JSON body"))
            .unwrap_or(Value::Null);
        (status, body)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.binary.kill();
        let _ = self.binary.wait();
        let _ = self.runtime.kill();
        let _ = self.runtime.wait();
    }
}

/// A file of `events/`, with `{{agreement_id}}` filled in.
pub fn fixture(path: &str, agreement_id: &str) -> String {
    let full = countersign_test_kit::repo_root().join("events").join(path);
    std::fs::read_to_string(&full)
        .unwrap_or_else(|error| panic!("{}: {error}", full.display()))
        .replace("{{agreement_id}}", agreement_id)
}

/// The callback fixture signed now with `secret`.
pub fn signed_callback(agreement_id: &str, secret: &str) -> String {
    let template = fixture("http/callback-sandbox.json", agreement_id);
    let body = serde_json::from_str::<Value>(&template).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    template.replace(
        "{{signature}}",
        &countersign_provider::sandbox::sign(secret.as_bytes(), now, body.as_bytes()),
    )
}

/// Every record of the table's stream so far, oldest first, as the Lambda DynamoDB event's
/// records (what the event source mapping would hand the outbox publisher).
pub async fn stream_records(resources: &Resources) -> Vec<Value> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let table = aws_sdk_dynamodb::Client::new(&resources.sdk)
        .describe_table()
        .table_name(&resources.table)
        .send()
        .await
        .expect("describe table");
    let stream_arn = table
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("the table has a stream")
        .to_owned();
    let streams = aws_sdk_dynamodbstreams::Client::new(&resources.sdk);
    let description = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .expect("describe stream");
    let mut records = Vec::new();
    for shard in description
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let output = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .expect("get records");
            if output.records().is_empty() {
                break;
            }
            for record in output.records() {
                let change = record.dynamodb().expect("a change");
                records.push(json!({
                    "eventID": record.event_id(),
                    "eventName": record.event_name().map(|name| name.as_str()),
                    "eventVersion": record.event_version(),
                    "eventSource": "aws:dynamodb",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": stream_arn,
                    "dynamodb": {
                        "ApproximateCreationDateTime": change.approximate_creation_date_time().map(|t| t.secs()).unwrap_or_default(),
                        "Keys": item_json(change.keys()),
                        "NewImage": item_json(change.new_image()),
                        "SequenceNumber": change.sequence_number(),
                        "SizeBytes": change.size_bytes(),
                        "StreamViewType": change.stream_view_type().map(|v| v.as_str()),
                    },
                }));
            }
            iterator = output.next_shard_iterator;
        }
    }
    records
}

fn item_json(
    item: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >,
) -> Value {
    let Some(item) = item else { return Value::Null };
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect(),
    )
}

fn attribute_json(value: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match value {
        A::S(text) => json!({ "S": text }),
        A::N(number) => json!({ "N": number }),
        A::Bool(flag) => json!({ "BOOL": flag }),
        A::Null(_) => json!({ "NULL": true }),
        A::Ss(texts) => json!({ "SS": texts }),
        A::Ns(numbers) => json!({ "NS": numbers }),
        A::M(map) => json!({ "M": item_json(Some(map)) }),
        A::L(list) => json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() }),
        other => panic!("an attribute type the table never writes: {other:?}"),
    }
}
