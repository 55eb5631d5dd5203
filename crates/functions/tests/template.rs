//! `template.yaml` against the code it deploys: the table is `table_definition`, every binary has
//! its one function, every route of SPEC section 3 reaches the function that serves it behind the
//! JWT authorizer (the provider callbacks excepted), the event sources, the outbox filter and the
//! dispatcher's rule are the code's, every function gets the environment its binary requires and
//! starts with it, the policies grant what that environment points at, and every dead-letter queue
//! has its alarm.
//!
//! The template is read in CloudFormation's JSON form: the short-form tags become their long form
//! (`!Ref X` is `{"Ref": "X"}`, `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` is
//! `{"Fn::Sub": "s"}`, and so on).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use countersign_functions::init::{self, http_api, HttpRole};
use countersign_functions::settings::{self, Settings};
use countersign_service::dispatcher::DISPATCHED_EVENT_TYPES;
use countersign_service::outbox::EVENT_SOURCE;
use countersign_store_dynamodb::{table_definition, OUTBOX_STREAM_FILTER};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every variable `Settings` reads, by the name of its constant (as the binaries' sources name it).
const SETTINGS: &[(&str, &str)] = &[
    ("TABLE_NAME", settings::TABLE_NAME),
    ("CALLBACK_QUEUE_URL", settings::CALLBACK_QUEUE_URL),
    ("EVENT_BUS_NAME", settings::EVENT_BUS_NAME),
    (
        "WEBHOOK_SECRET_PARAMETER",
        settings::WEBHOOK_SECRET_PARAMETER,
    ),
    ("TENANT_CLAIM", settings::TENANT_CLAIM),
    ("SERVICE_HOURS", settings::SERVICE_HOURS),
    ("DEFAULT_EXPIRY_DAYS", settings::DEFAULT_EXPIRY_DAYS),
    ("IDENTITY_CHECK_ATTEMPTS", settings::IDENTITY_CHECK_ATTEMPTS),
    ("SANDBOX_ENABLED", settings::SANDBOX_ENABLED),
    ("SWEEP_PAGE_SIZE", settings::SWEEP_PAGE_SIZE),
    ("SWEEP_MAX_SECONDS", settings::SWEEP_MAX_SECONDS),
    ("DOCUMENTS_BUCKET", settings::DOCUMENTS_BUCKET),
    ("TEST_MODE_PROVIDER", settings::TEST_MODE_PROVIDER),
    ("ZIGNED_API_URL", settings::ZIGNED_API_URL),
    ("ZIGNED_TOKEN_URL", settings::ZIGNED_TOKEN_URL),
    (
        "ZIGNED_CREDENTIALS_PARAMETER",
        settings::ZIGNED_CREDENTIALS_PARAMETER,
    ),
    (
        "ZIGNED_WEBHOOK_SECRET_PARAMETER",
        settings::ZIGNED_WEBHOOK_SECRET_PARAMETER,
    ),
];

/// What each function may do with the documents bucket (SPEC section 9): the read function
/// presigns links to signed documents, the callback processor keeps them, the dispatcher reads
/// the documents it sends. Nobody else touches the bucket.
const DOCUMENT_GRANTS: &[(&str, &str, &str)] = &[
    ("read", "s3:GetObject", "/signed/*"),
    ("callback-processor", "s3:PutObject", "/signed/*"),
    ("dispatcher", "s3:GetObject", "/documents/*"),
];

/// The functions that read Zigned's OAuth credentials: those that call Zigned.
const ZIGNED_CLIENTS: &[&str] = &["dispatcher", "callback-processor"];

/// SPEC section 3: every route, and the binary meant to serve it.
const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/v1/agreements", "create"),
    ("GET", "/v1/agreements", "read"),
    ("GET", "/v1/agreements/{id}", "read"),
    ("PATCH", "/v1/agreements/{id}", "read"),
    ("GET", "/v1/agreements/{id}/history", "read"),
    ("GET", "/v1/agreements/{id}/signed-document", "read"),
    ("POST", "/v1/agreements/{id}/lifecycle", "lifecycle"),
    (
        "POST",
        "/v1/sandbox/agreements/{id}/participants/{pid}/{action}",
        "lifecycle",
    ),
    ("POST", "/v1/sandbox/agreements/{id}/fail", "lifecycle"),
    ("POST", "/v1/sandbox/agreements/{id}/expire", "lifecycle"),
    ("POST", "/v1/callbacks/{provider}", "callback"),
];

/// The one route without the JWT authorizer: providers authenticate by signature (SPEC section 5).
const SIGNATURE_VERIFIED_ROUTE: (&str, &str) = ("POST", "/v1/callbacks/{provider}");

// ------------------------------------------------------------------------------------ reading

fn workspace() -> PathBuf {
    countersign_test_kit::repo_root()
}

/// The binaries of this package, by name (`src/bin/<name>.rs`).
fn binaries() -> BTreeSet<String> {
    let dir = workspace().join("crates/functions/src/bin");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn binary_source(binary: &str) -> String {
    let path = workspace().join(format!("crates/functions/src/bin/{binary}.rs"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// A YAML value in CloudFormation's JSON form.
fn cloudformation_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Yaml;
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(flag) => Value::Bool(flag),
        Yaml::Number(number) => {
            if let Some(int) = number.as_i64() {
                json!(int)
            } else if let Some(uint) = number.as_u64() {
                json!(uint)
            } else {
                json!(number.as_f64())
            }
        }
        Yaml::String(text) => Value::String(text),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(cloudformation_json).collect()),
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .into_iter()
                .map(|(key, value)| {
                    let Yaml::String(key) = key else {
                        panic!("template.yaml has a key that is not a string: {key:?}")
                    };
                    (key, cloudformation_json(value))
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let tagged = *tagged;
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = cloudformation_json(tagged.value);
            let (key, value) = match (name, value) {
                ("Ref" | "Condition", value) => (name.to_owned(), value),
                ("GetAtt", Value::String(path)) => {
                    let (resource, attribute) = path
                        .split_once('.')
                        .unwrap_or_else(|| panic!("!GetAtt {path} names no attribute"));
                    ("Fn::GetAtt".to_owned(), json!([resource, attribute]))
                }
                (_, value) => (format!("Fn::{name}"), value),
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    }
}

struct Template(Value);

impl Template {
    fn load() -> Template {
        let path = workspace().join("template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let yaml: serde_norway::Value = serde_norway::from_str(&text)
            .unwrap_or_else(|error| panic!("template.yaml is not YAML: {error}"));
        Template(cloudformation_json(yaml))
    }

    fn resources(&self) -> &Map<String, Value> {
        self.0["Resources"]
            .as_object()
            .expect("template.yaml has Resources")
    }

    fn resource(&self, id: &str) -> &Value {
        self.resources()
            .get(id)
            .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
    }

    fn of_type(&self, kind: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .iter()
            .filter(|(_, resource)| resource["Type"] == kind)
            .map(|(id, resource)| (id.as_str(), resource))
            .collect()
    }

    /// The id of the one resource of `kind`.
    fn only(&self, kind: &str) -> &str {
        let found = self.of_type(kind);
        assert_eq!(found.len(), 1, "template.yaml should have one {kind}");
        found[0].0
    }

    fn table(&self) -> &str {
        self.only("AWS::DynamoDB::Table")
    }

    fn functions(&self) -> Vec<Function<'_>> {
        self.of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|(id, resource)| Function {
                id,
                resource,
                globals: &self.0["Globals"]["Function"],
            })
            .collect()
    }

    /// The function that runs `binary` (checked to be exactly one by its own test).
    fn function(&self, binary: &str) -> Function<'_> {
        self.functions()
            .into_iter()
            .find(|function| function.binary() == Some(binary))
            .unwrap_or_else(|| panic!("no function of template.yaml runs `{binary}`"))
    }

    /// A value as the function would see it in its environment: a parameter's default, or a
    /// stand-in naming the resource or expression (only required to be there).
    fn resolve(&self, value: &Value) -> String {
        match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            _ => {
                if let Some(name) = ref_name(value) {
                    if let Some(parameter) = self.0["Parameters"].get(name) {
                        return match &parameter["Default"] {
                            Value::String(text) => text.clone(),
                            Value::Null => format!("{{{name}}}"),
                            other => other.to_string(),
                        };
                    }
                    self.resource(name);
                    return format!("ref:{name}");
                }
                if let Some((resource, attribute)) = get_att(value) {
                    self.resource(resource);
                    return format!("attribute:{resource}.{attribute}");
                }
                format!("expression:{value}")
            }
        }
    }
}

struct Function<'a> {
    id: &'a str,
    resource: &'a Value,
    globals: &'a Value,
}

impl<'a> Function<'a> {
    fn properties(&self) -> &'a Value {
        &self.resource["Properties"]
    }

    /// A property of the function, or of `Globals.Function` when the function does not set it.
    fn property(&self, name: &str) -> &'a Value {
        match self.properties().get(name) {
            Some(value) => value,
            None => &self.globals[name],
        }
    }

    /// `Metadata.BuildProperties.Binary`: the `--bin` sam build gives `cargo lambda build`.
    fn binary(&self) -> Option<&'a str> {
        self.resource["Metadata"]["BuildProperties"]["Binary"].as_str()
    }

    fn binary_name(&self) -> &'a str {
        self.binary()
            .unwrap_or_else(|| panic!("{} has no Metadata.BuildProperties.Binary", self.id))
    }

    /// Globals' variables, then the function's (SAM merges them, the function's winning).
    fn environment(&self) -> BTreeMap<String, Value> {
        let mut variables = BTreeMap::new();
        for source in [
            &self.globals["Environment"]["Variables"],
            &self.properties()["Environment"]["Variables"],
        ] {
            if let Some(map) = source.as_object() {
                variables.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        variables
    }

    /// The properties of the function's events of `kind` (`HttpApi`, `SQS`, `DynamoDB`...).
    fn events(&self, kind: &str) -> Vec<(&'a str, &'a Value)> {
        self.properties()["Events"]
            .as_object()
            .map(|events| {
                events
                    .iter()
                    .filter(|(_, event)| event["Type"] == kind)
                    .map(|(name, event)| (name.as_str(), &event["Properties"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every statement of the function's policies, all inline so that they can be read here.
    fn statements(&self) -> Vec<&'a Value> {
        let Some(policies) = self.properties()["Policies"].as_array() else {
            return Vec::new();
        };
        policies
            .iter()
            .flat_map(|policy| {
                policy["Statement"]
                    .as_array()
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: a policy that is not an inline statement list: {policy}",
                            self.id
                        )
                    })
                    .iter()
            })
            // A conditional statement (`!If [condition, statement, !Ref AWS::NoValue]`) is read
            // as granted: the test checks what it may come to.
            .map(
                |statement| match statement.get("Fn::If").and_then(Value::as_array) {
                    Some(branches)
                        if branches.len() == 3 && branches[2] == ref_of("AWS::NoValue") =>
                    {
                        &branches[1]
                    }
                    _ => statement,
                },
            )
            .collect()
    }

    /// The (action, resource) pairs the function's policies allow.
    fn grants(&self) -> Vec<(String, Value)> {
        let mut grants = Vec::new();
        for statement in self.statements() {
            assert_eq!(statement["Effect"], "Allow", "{}: {statement}", self.id);
            for action in one_or_many(&statement["Action"]) {
                for resource in one_or_many(&statement["Resource"]) {
                    grants.push((
                        action.as_str().expect("an action").to_owned(),
                        resource.clone(),
                    ));
                }
            }
        }
        grants
    }
}

fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn ref_name(value: &Value) -> Option<&str> {
    let object = value.as_object()?;
    (object.len() == 1).then(|| object.get("Ref")?.as_str())?
}

fn get_att(value: &Value) -> Option<(&str, &str)> {
    let pair = value.as_object()?.get("Fn::GetAtt")?.as_array()?;
    Some((pair.first()?.as_str()?, pair.get(1)?.as_str()?))
}

fn get_att_of(resource: &str, attribute: &str) -> Value {
    json!({"Fn::GetAtt": [resource, attribute]})
}

fn ref_of(name: &str) -> Value {
    json!({ "Ref": name })
}

/// The HTTP role a binary serves, from its `serve_http::<role::..>()`.
fn http_role(source: &str) -> Option<HttpRole> {
    let (_, rest) = source.split_once("serve_http::<role::")?;
    let variant: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(match variant.as_str() {
        "Agreements" => HttpRole::Agreements,
        "LifecycleAndSandbox" => HttpRole::LifecycleAndSandbox,
        "Callbacks" => HttpRole::Callbacks,
        other => panic!("role::{other} is new: teach this test what it requires"),
    })
}

// ------------------------------------------------------------------------------------ the table

#[test]
fn the_table_is_table_definition() {
    let template = Template::load();
    let table = template.resource(template.table());
    let mut properties = table["Properties"]
        .as_object()
        .expect("the table has Properties")
        .clone();
    // A fixed name is the template's business; everything else is the definition's.
    properties.remove("TableName");
    let expected = table_definition("countersign").cloudformation_properties();
    assert!(
        Value::Object(properties.clone()) == expected,
        "the table of template.yaml is not table_definition().cloudformation_properties() \
         (infra/table.json): copy that file's content into its Properties.\n\
         --- template.yaml ---\n{}\n--- table_definition ---\n{}",
        serde_json::to_string_pretty(&properties).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
}

/// Nothing lost: the table can be restored to any second of the last 35 days (point-in-time
/// recovery), cannot be deleted while protection is on, and stays when the stack is deleted or
/// the resource replaced; its time-to-live clears only what the code lets expire.
#[test]
fn the_table_is_recoverable_protected_and_retained() {
    let template = Template::load();
    let id = template.table();
    let table = template.resource(id);
    assert_eq!(table["DeletionPolicy"], "Retain", "{id}");
    assert_eq!(table["UpdateReplacePolicy"], "Retain", "{id}");
    let properties = &table["Properties"];
    assert_eq!(
        properties["PointInTimeRecoverySpecification"],
        json!({"PointInTimeRecoveryEnabled": true}),
        "{id}"
    );
    assert_eq!(properties["DeletionProtectionEnabled"], json!(true), "{id}");
    assert_eq!(
        properties["TimeToLiveSpecification"],
        json!({"AttributeName": countersign_store_dynamodb::item::TTL, "Enabled": true}),
        "{id}"
    );
}

/// SQS's longest retention, 14 days, in seconds.
const FOURTEEN_DAYS: u64 = 14 * 24 * 3600;

/// Every resource that holds data (the table, every queue: each holds messages not yet handled
/// or dead letters, a bucket when there is one) stays when the stack is deleted or the resource
/// replaced; every queue keeps its messages as long as SQS allows.
#[test]
fn what_holds_data_is_retained_and_every_queue_keeps_messages_14_days() {
    let template = Template::load();
    let mut holders = Vec::new();
    for kind in ["AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::S3::Bucket"] {
        holders.extend(template.of_type(kind));
    }
    for (id, resource) in &holders {
        assert_eq!(resource["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{id}");
    }
    let queues = template.of_type("AWS::SQS::Queue");
    assert!(
        queues.len() >= 6,
        "callback, dispatch and their dead letters, the outbox failures, the sweep dead letters: \
         {:?}",
        queues.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    for (id, queue) in &queues {
        assert_eq!(
            queue["Properties"]["MessageRetentionPeriod"].as_u64(),
            Some(FOURTEEN_DAYS),
            "{id}"
        );
    }
}

// ------------------------------------------------------------------------------------ binaries

#[test]
fn every_binary_has_exactly_one_function_built_for_it() {
    let template = Template::load();
    let mut functions_of: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for function in template.functions() {
        let id = function.id;
        assert_eq!(
            function.resource["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{id}: sam build must build it with cargo lambda"
        );
        // Without it, sam build would build every binary of the workspace and then not know
        // which one to copy.
        let binary = function.binary_name();
        // The workspace root: sam build runs `cargo lambda build --bin <Binary>` there.
        assert_eq!(function.property("CodeUri"), ".", "{id}: CodeUri");
        assert_eq!(function.property("Handler"), "bootstrap", "{id}: Handler");
        assert_eq!(
            function.property("Runtime"),
            "provided.al2023",
            "{id}: Runtime"
        );
        // cargo lambda build --arm64 (scripts/deploy-checks, sam build) makes aarch64 binaries.
        assert_eq!(
            function.property("Architectures"),
            &json!(["arm64"]),
            "{id}: Architectures"
        );
        functions_of
            .entry(binary.to_owned())
            .or_default()
            .push(function.id);
    }
    let binaries = binaries();
    for binary in &binaries {
        let functions = functions_of.get(binary).cloned().unwrap_or_default();
        assert_eq!(
            functions.len(),
            1,
            "src/bin/{binary}.rs should be run by exactly one function of template.yaml: {functions:?}"
        );
    }
    let unknown: Vec<&String> = functions_of
        .keys()
        .filter(|binary| !binaries.contains(*binary))
        .collect();
    assert!(
        unknown.is_empty(),
        "template.yaml builds binaries that src/bin does not have: {unknown:?}"
    );
}

// ------------------------------------------------------------------------------------ routes

#[test]
fn every_route_reaches_its_function_behind_the_jwt_authorizer_but_the_callbacks() {
    let template = Template::load();
    let api = template.only("AWS::Serverless::HttpApi");
    let auth = &template.resource(api)["Properties"]["Auth"];
    let jwt = auth["DefaultAuthorizer"]
        .as_str()
        .expect("the HttpApi has a DefaultAuthorizer");
    let authorizer = &auth["Authorizers"][jwt];
    assert!(
        authorizer["JwtConfiguration"]["issuer"].is_object()
            && authorizer["JwtConfiguration"]["audience"].is_object(),
        "the default authorizer {jwt} is a JWT authorizer with the issuer and audience \
         parameters: {authorizer}"
    );
    assert_eq!(
        authorizer["IdentitySource"], "$request.header.Authorization",
        "{jwt}: the bearer token"
    );

    // (method, path) -> (binary, authorizer)
    let mut routes: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for function in template.functions() {
        for (event, properties) in function.events("HttpApi") {
            assert_eq!(
                properties["ApiId"],
                ref_of(api),
                "{}.{event}: a route of the HttpApi",
                function.id
            );
            let method = properties["Method"]
                .as_str()
                .expect("a Method")
                .to_uppercase();
            let path = properties["Path"].as_str().expect("a Path").to_owned();
            let authorizer = properties["Auth"]["Authorizer"]
                .as_str()
                .unwrap_or(jwt)
                .to_owned();
            let previous = routes.insert(
                (method.clone(), path.clone()),
                (function.binary_name().to_owned(), authorizer),
            );
            assert!(previous.is_none(), "{method} {path} is routed twice");
        }
    }

    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();
    let routed: BTreeSet<(String, String)> = routes.keys().cloned().collect();
    assert_eq!(
        routed, expected,
        "the routes of template.yaml, SPEC section 3"
    );
    for (method, path, binary) in ROUTES {
        let (serves, authorizer) = &routes[&(method.to_string(), path.to_string())];
        assert_eq!(serves, binary, "{method} {path} is served by");
        if (*method, *path) == SIGNATURE_VERIFIED_ROUTE {
            assert_eq!(
                authorizer, "NONE",
                "{method} {path}: providers have no JWT, the adapter verifies the signature"
            );
        } else {
            assert_eq!(
                authorizer, jwt,
                "{method} {path}: the tenant comes from the JWT authorizer"
            );
        }
    }
}

// ------------------------------------------------------------------------------------ event sources

/// The binaries that take SQS batches or the table's stream report item failures: their event
/// sources must ask for that report, or a failed item would be dropped with its batch's success.
/// Queues outlast their consumer: a visibility timeout of at least six times its timeout.
#[test]
fn batch_consumers_report_item_failures_and_their_queues_outlast_them() {
    let template = Template::load();
    for function in template.functions() {
        let binary = function.binary_name();
        let source = binary_source(binary);
        let sqs = function.events("SQS");
        let streams = function.events("DynamoDB");
        assert_eq!(
            source.contains("SqsEvent"),
            !sqs.is_empty(),
            "{binary}: an SQS event source if and only if the binary takes SqsEvent"
        );
        assert_eq!(
            source.contains("dynamodb::Event"),
            !streams.is_empty(),
            "{binary}: a DynamoDB stream source if and only if the binary takes its events"
        );
        let timeout = function.property("Timeout").as_u64().expect("a Timeout");
        for (event, properties) in sqs.iter().chain(&streams) {
            assert_eq!(
                properties["FunctionResponseTypes"],
                json!(["ReportBatchItemFailures"]),
                "{binary}.{event}"
            );
        }
        for (event, properties) in &sqs {
            let batch = properties["BatchSize"].as_u64().unwrap_or(10);
            assert!(
                (1..=10).contains(&batch),
                "{binary}.{event}: BatchSize {batch}"
            );
            let (queue, _) = get_att(&properties["Queue"])
                .unwrap_or_else(|| panic!("{binary}.{event}: Queue is a queue of the template"));
            let visibility = template.resource(queue)["Properties"]["VisibilityTimeout"]
                .as_u64()
                .unwrap_or(30);
            assert!(
                visibility >= 6 * timeout,
                "{queue}: VisibilityTimeout {visibility} s, under six times the {timeout} s \
                 timeout of {binary}"
            );
        }
    }
}

#[test]
fn the_outbox_publisher_takes_inserted_history_items_in_order() {
    let template = Template::load();
    let publisher = template.function("outbox-publisher");
    let streams = publisher.events("DynamoDB");
    assert_eq!(streams.len(), 1, "one stream source");
    let (_, source) = streams[0];
    assert_eq!(
        source["Stream"],
        get_att_of(template.table(), "StreamArn"),
        "the table's stream"
    );
    let filters = source["FilterCriteria"]["Filters"]
        .as_array()
        .expect("FilterCriteria.Filters");
    assert_eq!(filters.len(), 1, "one filter: {filters:?}");
    let pattern: Value = serde_json::from_str(
        filters[0]["Pattern"]
            .as_str()
            .expect("a Pattern, as a JSON string"),
    )
    .expect("the Pattern is JSON");
    let expected: Value = serde_json::from_str(OUTBOX_STREAM_FILTER).unwrap();
    assert_eq!(pattern, expected, "the pattern is OUTBOX_STREAM_FILTER");
    // Per-agreement order: one batch at a time per shard, a failed batch retried as it was.
    assert_eq!(source["ParallelizationFactor"], 1);
    assert_eq!(source["BisectBatchOnFunctionError"], false);
    assert!(
        source["MaximumRetryAttempts"].as_i64().is_some(),
        "a bounded retry, then the failure destination"
    );
    let (failures, _) = get_att(&source["DestinationConfig"]["OnFailure"]["Destination"])
        .expect("an OnFailure destination");
    assert_eq!(template.resource(failures)["Type"], "AWS::SQS::Queue");
}

#[test]
fn the_dispatcher_rule_takes_the_dispatched_event_types_from_the_publishers_bus() {
    let template = Template::load();
    let dispatcher = template.function("dispatcher");
    let sources = dispatcher.events("SQS");
    assert_eq!(sources.len(), 1, "the dispatcher reads one queue");
    let (queue, _) = get_att(&sources[0].1["Queue"]).expect("a queue of the template");
    let queue_arn = get_att_of(queue, "Arn");

    let rules: Vec<(&str, &Value)> = template
        .of_type("AWS::Events::Rule")
        .into_iter()
        .filter(|(_, rule)| {
            one_or_many(&rule["Properties"]["Targets"])
                .iter()
                .any(|target| target["Arn"] == queue_arn)
        })
        .collect();
    assert_eq!(rules.len(), 1, "one rule feeds {queue}");
    let (rule_id, rule) = rules[0];
    let rule = &rule["Properties"];

    let pattern = rule["EventPattern"]
        .as_object()
        .expect("an EventPattern object");
    assert_eq!(
        pattern.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["source", "detail-type"]),
        "{rule_id} matches on source and detail-type only"
    );
    assert_eq!(
        pattern["source"],
        json!([EVENT_SOURCE]),
        "{rule_id}: source"
    );
    let detail_types: Vec<&str> = pattern["detail-type"]
        .as_array()
        .expect("detail-type is a list")
        .iter()
        .map(|t| t.as_str().expect("a detail-type string"))
        .collect();
    let expected: BTreeSet<&str> = DISPATCHED_EVENT_TYPES.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        detail_types.iter().copied().collect::<BTreeSet<_>>(),
        expected,
        "{rule_id}: the detail-types are DISPATCHED_EVENT_TYPES"
    );
    assert_eq!(detail_types.len(), expected.len(), "{rule_id}: no repeats");

    // The bus of the rule is the one the outbox publisher publishes on.
    let bus = ref_name(&rule["EventBusName"]).expect("EventBusName is !Ref of the bus");
    assert_eq!(template.resource(bus)["Type"], "AWS::Events::EventBus");
    assert_eq!(
        template
            .function("outbox-publisher")
            .environment()
            .get(settings::EVENT_BUS_NAME),
        Some(&ref_of(bus)),
        "the outbox publisher publishes on {bus}"
    );

    // EventBridge may deliver to the queue (and to the target's dead-letter queue) for this rule.
    let rule_arn = get_att_of(rule_id, "Arn");
    let mut delivered_to = vec![queue];
    for target in one_or_many(&rule["Targets"]) {
        if let Some((dead_letters, _)) = get_att(&target["DeadLetterConfig"]["Arn"]) {
            delivered_to.push(dead_letters);
        }
    }
    for destination in delivered_to {
        let allowed = template
            .of_type("AWS::SQS::QueuePolicy")
            .into_iter()
            .filter(|(_, policy)| {
                one_or_many(&policy["Properties"]["Queues"]).contains(&&ref_of(destination))
            })
            .flat_map(|(_, policy)| {
                one_or_many(&policy["Properties"]["PolicyDocument"]["Statement"])
            })
            .any(|statement| {
                statement["Effect"] == "Allow"
                    && statement["Principal"]["Service"] == "events.amazonaws.com"
                    && one_or_many(&statement["Action"]).contains(&&json!("sqs:SendMessage"))
                    && one_or_many(&statement["Resource"])
                        .contains(&&get_att_of(destination, "Arn"))
                    && statement["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn
            });
        assert!(
            allowed,
            "a queue policy of {destination} lets events.amazonaws.com send from {rule_id}"
        );
    }
}

// ------------------------------------------------------------------------------------ environment

/// A stand-in for SSM on loopback: every request gets one GetParameter answer with one secret.
async fn ssm_stand_in() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // The head, then as much body as its content-length says.
                loop {
                    let read = socket.read(&mut buffer).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..read]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|value| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                let body = r#"{"Parameter":{"Name":"webhook-secrets","Type":"SecureString","Value":"template-test-secret","Version":1}}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// Every function gets what its binary requires: variables `Settings` reads (no misspelt one),
/// the table, valid values (from the parameters' defaults), what its own code requires
/// (`Settings::require`), and for the HTTP binaries, what their role needs to build the API
/// (its parts at init, then its secrets as on first use), run for real (SSM answered on loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_gets_the_environment_its_binary_requires() {
    let template = Template::load();
    let table = template.table();
    let known: BTreeSet<&str> = SETTINGS.iter().map(|(_, variable)| *variable).collect();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
        .endpoint_url(ssm_stand_in().await)
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "template-test",
            "template-test",
            None,
            None,
            "template-test",
        ))
        .load()
        .await;

    for function in template.functions() {
        let binary = function.binary_name();
        let environment = function.environment();
        for name in environment.keys() {
            assert!(
                known.contains(name.as_str()),
                "{binary}: {name} is set, but no setting reads it"
            );
        }
        assert_eq!(
            environment.get(settings::TABLE_NAME),
            Some(&ref_of(table)),
            "{binary}: TABLE_NAME is the table (Settings requires it of every function)"
        );
        let values: BTreeMap<String, String> = environment
            .iter()
            .map(|(name, value)| (name.clone(), template.resolve(value)))
            .filter(|(_, value)| !value.trim().is_empty())
            .collect();
        let settings = Settings::from_lookup(|name| values.get(name).cloned())
            .unwrap_or_else(|error| panic!("{binary}: its environment is refused: {error}"));

        let source = binary_source(binary);
        if let Some(role) = http_role(&source) {
            assert_eq!(
                environment.get(settings::TENANT_CLAIM),
                Some(&ref_of("TenantClaim")),
                "{binary}: the tenant is the claim the TenantClaim parameter names"
            );
            if let Err(error) = http_api(&sdk, &settings, role).await {
                panic!("{binary} ({role:?}) cannot start with its environment: {error}");
            }
            continue;
        }
        // What each worker's `main` builds at init, built here from its template environment.
        let built = match binary {
            // Built at init, then with its secrets as on first use.
            "dispatcher" => match init::dispatcher(&sdk, &settings) {
                Ok(dispatcher) => dispatcher.get().await.map(drop),
                Err(error) => Err(error),
            },
            "callback-processor" => match init::callback_processor(&sdk, &settings) {
                Ok(processor) => processor.get().await.map(drop),
                Err(error) => Err(error),
            },
            "outbox-publisher" => init::outbox_publisher(&sdk, &settings).map(drop),
            "sweeper" => {
                // Needs nothing but the table: building it cannot fail.
                let _sweeper = init::sweeper(&sdk, &settings);
                Ok(())
            }
            other => panic!("{other} is a new function: teach this test what its main builds"),
        };
        let call = format!("init::{}(", binary.replace('-', "_"));
        assert!(
            source.contains(&call),
            "{binary}'s main builds what it runs with {call}..), as this test does"
        );
        if let Err(error) = built {
            panic!("{binary} cannot start with its environment: {error}");
        }
    }
}

/// A worker whose template environment lacks a setting its init requires is refused here,
/// before a deployment finds out (the check this test makes of every worker above).
#[tokio::test]
async fn a_worker_without_a_setting_its_init_requires_is_refused() {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
        .load()
        .await;
    let without_bucket = Settings::from_lookup(|name| {
        (name == settings::TABLE_NAME).then(|| "countersign".to_owned())
    })
    .expect("the table alone is enough for Settings");
    for built in [
        init::dispatcher(&sdk, &without_bucket).map(drop),
        init::callback_processor(&sdk, &without_bucket).map(drop),
    ] {
        let error = built.expect_err("no documents bucket").to_string();
        assert!(error.contains(settings::DOCUMENTS_BUCKET), "{error}");
    }
    let error = init::outbox_publisher(&sdk, &without_bucket)
        .map(drop)
        .expect_err("no bus")
        .to_string();
    assert!(error.contains(settings::EVENT_BUS_NAME), "{error}");
}

// ------------------------------------------------------------------------------------ permissions

/// What a function's environment points at is what its policies let it use, and nothing more
/// of those kinds; table actions only ever on the table and its indexes.
#[test]
fn policies_grant_what_the_environment_points_at() {
    let template = Template::load();
    let table = template.table();
    let table_resources = [
        get_att_of(table, "Arn"),
        json!({ "Fn::Sub": format!("${{{table}.Arn}}/index/*") }),
    ];
    for function in template.functions() {
        let binary = function.binary_name();
        let environment = function.environment();
        let grants = function.grants();
        let mut expected_other: Vec<(String, Value)> = Vec::new();
        if let Some(queue) = environment
            .get(settings::CALLBACK_QUEUE_URL)
            .and_then(ref_name)
        {
            expected_other.push(("sqs:SendMessage".to_owned(), get_att_of(queue, "Arn")));
        }
        if let Some(bus) = environment.get(settings::EVENT_BUS_NAME).and_then(ref_name) {
            expected_other.push(("events:PutEvents".to_owned(), get_att_of(bus, "Arn")));
        }
        let mut parameters: Vec<&str> = [
            settings::WEBHOOK_SECRET_PARAMETER,
            settings::ZIGNED_WEBHOOK_SECRET_PARAMETER,
        ]
        .iter()
        .filter_map(|variable| environment.get(*variable).and_then(ref_name))
        .collect();
        if ZIGNED_CLIENTS.contains(&binary) {
            parameters.push("ZignedCredentialsParameterName");
        }
        for parameter in parameters {
            let arn = format!(
                "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{parameter}}}"
            );
            let grant = ("ssm:GetParameter".to_owned(), json!({ "Fn::Sub": arn }));
            assert!(
                grants.contains(&grant),
                "{binary}: ssm:GetParameter on the parameter {parameter}: {grants:?}"
            );
            expected_other.push(grant);
        }
        let bucket = ref_name(&environment[settings::DOCUMENTS_BUCKET])
            .unwrap_or_else(|| panic!("{binary}: DOCUMENTS_BUCKET is a bucket"));
        for (_, action, path) in DOCUMENT_GRANTS.iter().filter(|(b, _, _)| *b == binary) {
            expected_other.push((
                (*action).to_owned(),
                json!({ "Fn::Sub": format!("${{{bucket}.Arn}}{path}") }),
            ));
        }
        for grant in &expected_other {
            assert!(
                grants.contains(grant),
                "{binary}: its environment points at what {} on {} allows",
                grant.0,
                grant.1
            );
        }
        for grant in grants.iter().filter(|(a, _)| !a.starts_with("dynamodb:")) {
            assert!(
                expected_other.contains(grant),
                "{binary}: {} on {} is more than its environment points at",
                grant.0,
                grant.1
            );
        }
        for (action, resource) in grants.iter().filter(|(a, _)| a.starts_with("dynamodb:")) {
            assert!(
                table_resources.contains(resource),
                "{binary}: {action} on {resource}, not the table or its indexes"
            );
        }
    }
    // The publisher and the callback function never touch the table (the stream reaches the publisher through its event source).
    let table_actions = |binary: &str| -> BTreeSet<String> {
        template
            .function(binary)
            .grants()
            .into_iter()
            .map(|(action, _)| action)
            .filter(|action| action.starts_with("dynamodb:"))
            .collect()
    };
    // The dispatcher reads agreements, writes the provider's progress and the delivery, and
    // takes and gives back its lease of an agreement.
    assert_eq!(
        table_actions("dispatcher"),
        BTreeSet::from([
            "dynamodb:GetItem".to_owned(),
            "dynamodb:PutItem".to_owned(),
            "dynamodb:DeleteItem".to_owned()
        ])
    );
    assert!(table_actions("outbox-publisher").is_empty());
    assert!(table_actions("callback").is_empty());
}

// ------------------------------------------------------------------------------------ alarms

/// Whatever lands in a dead-letter queue (a queue's redrive target, a stream's or a rule
/// target's failure destination, the schedule's dead letters) raises an alarm.
#[test]
fn every_dead_letter_queue_has_an_alarm() {
    let template = Template::load();
    let mut dead_letter_queues: BTreeSet<String> = BTreeSet::new();
    let mut collect = |value: &Value| {
        let (queue, _) = get_att(value).unwrap_or_else(|| panic!("a queue's Arn: {value}"));
        assert_eq!(
            template.resource(queue)["Type"],
            "AWS::SQS::Queue",
            "{queue}"
        );
        dead_letter_queues.insert(queue.to_owned());
    };
    for (_, queue) in template.of_type("AWS::SQS::Queue") {
        let redrive = &queue["Properties"]["RedrivePolicy"];
        if !redrive.is_null() {
            collect(&redrive["deadLetterTargetArn"]);
        }
    }
    for (_, rule) in template.of_type("AWS::Events::Rule") {
        for target in one_or_many(&rule["Properties"]["Targets"]) {
            if !target["DeadLetterConfig"].is_null() {
                collect(&target["DeadLetterConfig"]["Arn"]);
            }
        }
    }
    for function in template.functions() {
        for kind in ["DynamoDB", "SQS"] {
            for (_, source) in function.events(kind) {
                let destination = &source["DestinationConfig"]["OnFailure"]["Destination"];
                if !destination.is_null() {
                    collect(destination);
                }
            }
        }
        for (_, schedule) in function.events("ScheduleV2") {
            collect(&schedule["DeadLetterConfig"]["Arn"]);
        }
    }
    assert!(
        dead_letter_queues.len() >= 4,
        "callbacks, dispatch, outbox and sweep dead letters: {dead_letter_queues:?}"
    );

    let alarms = template.of_type("AWS::CloudWatch::Alarm");
    for queue in &dead_letter_queues {
        let alarm = alarms.iter().find(|(_, alarm)| {
            one_or_many(&alarm["Properties"]["Dimensions"])
                .iter()
                .any(|d| d["Name"] == "QueueName" && d["Value"] == get_att_of(queue, "QueueName"))
        });
        let (id, alarm) = alarm.unwrap_or_else(|| panic!("no alarm watches {queue}"));
        let properties = &alarm["Properties"];
        assert_eq!(properties["Namespace"], "AWS/SQS", "{id}");
        assert_eq!(
            properties["MetricName"], "ApproximateNumberOfMessagesVisible",
            "{id}"
        );
        assert_eq!(
            properties["ComparisonOperator"], "GreaterThanThreshold",
            "{id}"
        );
        assert_eq!(properties["Threshold"], 0, "{id}");
        assert_eq!(
            properties["AlarmActions"],
            json!({"Fn::If": ["HasAlarmTopic", [ref_of("AlarmTopicArn")], ref_of("AWS::NoValue")]}),
            "{id}: tells the AlarmTopicArn topic, when there is one"
        );
    }
}

// ------------------------------------------------------------------------------------ documents

/// The documents bucket (SPEC section 9): versioned, encrypted, never public, TLS only, and the
/// one bucket every function is told of.
#[test]
fn the_documents_bucket_is_versioned_encrypted_private_and_tls_only() {
    let template = Template::load();
    let bucket = template.only("AWS::S3::Bucket");
    let properties = &template.resource(bucket)["Properties"];
    assert_eq!(properties["VersioningConfiguration"]["Status"], "Enabled");
    let encryption = &properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert!(
        ["AES256", "aws:kms"].contains(
            &encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
                .as_str()
                .unwrap_or_default()
        ),
        "{encryption}"
    );
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            properties["PublicAccessBlockConfiguration"][setting], true,
            "{setting}"
        );
    }
    let (_, policy) = template
        .of_type("AWS::S3::BucketPolicy")
        .into_iter()
        .find(|(_, policy)| policy["Properties"]["Bucket"] == ref_of(bucket))
        .expect("a bucket policy");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert!(
        statements
            .iter()
            .any(|statement| statement["Effect"] == "Deny"
                && statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
        "plain HTTP is denied: {statements:?}"
    );
    for function in template.functions() {
        assert_eq!(
            function.environment().get(settings::DOCUMENTS_BUCKET),
            Some(&ref_of(bucket)),
            "{}",
            function.binary_name()
        );
    }
}
