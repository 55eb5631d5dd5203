//! The table has one definition: what `create_table` creates and what `infra/table.json` (the
//! CloudFormation `Properties` of the SAM template's table) says both come from
//! `table_definition`.

mod support;

use std::path::PathBuf;

use aws_sdk_dynamodb::types::{KeyType, ProjectionType, StreamViewType, TimeToLiveStatus};
use countersign_store_dynamodb::{table_definition, RequestCounter};

const UPDATE_VAR: &str = "COUNTERSIGN_UPDATE_INFRA";

fn infra_table_json() -> PathBuf {
    countersign_test_kit::repo_root().join("infra/table.json")
}

#[test]
fn infra_table_json_is_the_table_definition() {
    let path = infra_table_json();
    let emitted = table_definition("countersign").cloudformation_json();
    if std::env::var(UPDATE_VAR).is_ok_and(|value| value == "1") {
        std::fs::write(&path, &emitted).expect("infra/table.json is writable");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == emitted,
        "infra/table.json is not what table_definition() emits. Regenerate it with\n  \
         {UPDATE_VAR}=1 cargo test -p countersign-store-dynamodb --test table_definition\n\
         and commit it (and carry the change into template.yaml if it inlines the table).\n\
         --- emitted ---\n{emitted}--- checked in ({}) ---\n{checked_in}",
        path.display()
    );
}

/// What moto created from the definition is what the definition says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_table_creates_the_definition() {
    let counter = RequestCounter::new();
    let client = support::client(&counter).await;
    let name = support::unique_table("definition");
    let definition = table_definition(&name);
    definition.create(&client).await.expect("created");

    let described = client
        .describe_table()
        .table_name(&name)
        .send()
        .await
        .expect("described");
    let table = described.table().expect("a table");
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        let key = |key_type: KeyType| {
            schema
                .iter()
                .find(|key| *key.key_type() == key_type)
                .map(|key| key.attribute_name().to_owned())
        };
        (key(KeyType::Hash), key(KeyType::Range))
    };
    assert_eq!(
        keys(table.key_schema()),
        (
            Some(definition.partition_key.to_owned()),
            Some(definition.sort_key.to_owned())
        )
    );
    let mut attributes: Vec<String> = table
        .attribute_definitions()
        .iter()
        .map(|attribute| attribute.attribute_name().to_owned())
        .collect();
    attributes.sort();
    assert_eq!(attributes, definition.key_attributes());
    let indexes = table.global_secondary_indexes();
    assert_eq!(indexes.len(), definition.indexes.len());
    for index in &definition.indexes {
        let created = indexes
            .iter()
            .find(|created| created.index_name() == Some(index.name))
            .unwrap_or_else(|| panic!("index {} missing", index.name));
        assert_eq!(
            keys(created.key_schema()),
            (
                Some(index.partition_key.to_owned()),
                Some(index.sort_key.to_owned())
            )
        );
        assert_eq!(
            created
                .projection()
                .and_then(|projection| projection.projection_type()),
            Some(&ProjectionType::All)
        );
    }
    let stream = table.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type(),
        Some(&StreamViewType::from(definition.stream_view))
    );
    let ttl = client
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .expect("described");
    let ttl = ttl.time_to_live_description().expect("ttl");
    assert_eq!(ttl.attribute_name(), Some(definition.ttl_attribute));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}
