//! What each request body must look like, in the API's own words, and the problems of one that
//! does not: one per field, with its JSON pointer, its dotted path and what it must be.
//!
//! A body is accepted when it fits its shape and serde reads it as its input type. The shapes are
//! the one owner of the words; a test per shape checks, field by field, that it accepts exactly
//! what serde accepts, but for one thing it adds on purpose: an object must be an object (serde
//! would read a struct's fields from an array, by position). Should a shape and its type drift
//! anyway, the answer still points at the field serde stopped at, without serde's vocabulary.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use countersign_domain::input::EXPIRES_IN_DAYS;

use crate::response::ApiError;

/// What a JSON value must be.
#[derive(Debug)]
pub enum Shape {
    /// A JSON string.
    Text,
    /// `true` or `false`.
    Flag,
    /// A non-negative integer up to `max` (what the type holds; tighter bounds are 422 checks),
    /// described to clients as `words`.
    WholeNumber { max: u64, words: &'static str },
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// An object with these fields and no others.
    Object(&'static [Field]),
    /// An array of values of this shape.
    List(&'static Shape),
    /// Anything (read and checked elsewhere).
    Any,
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub presence: Presence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Must be present, and not null.
    Required,
    /// May be left out or null.
    Optional,
    /// May be left out (a default applies) but not null.
    Defaulted,
}

const fn field(name: &'static str, shape: Shape, presence: Presence) -> Field {
    Field {
        name,
        shape,
        presence,
    }
}

const fn optional(name: &'static str, shape: Shape) -> Field {
    field(name, shape, Presence::Optional)
}

const fn defaulted(name: &'static str, shape: Shape) -> Field {
    field(name, shape, Presence::Defaulted)
}

const fn required(name: &'static str, shape: Shape) -> Field {
    field(name, shape, Presence::Required)
}

const FILE_REF: Shape = Shape::Object(&[
    optional("id", Shape::Text),
    required("filename", Shape::Text),
    required("mime_type", Shape::Text),
    required(
        "size",
        Shape::WholeNumber {
            max: u64::MAX,
            words: "a whole number of bytes",
        },
    ),
    required("sha256", Shape::Text),
    required("uri", Shape::Text),
]);

const PARTICIPANT: Shape = Shape::Object(&[
    optional("id", Shape::Text),
    optional("name", Shape::Text),
    optional("email", Shape::Text),
    defaulted("role", Shape::OneOf(&["signer", "approver"])),
    defaulted(
        "signing_group",
        Shape::WholeNumber {
            max: u32::MAX as u64,
            words: "a whole number, 1 or more",
        },
    ),
]);

const OBSERVER: Shape = Shape::Object(&[
    optional("id", Shape::Text),
    optional("name", Shape::Text),
    optional("email", Shape::Text),
    defaulted("scope", Shape::OneOf(&["viewer", "cc"])),
]);

/// The body of `POST /v1/agreements`, and an agreement's editable fields after a `PATCH` merge.
pub const AGREEMENT_INPUT: Shape = Shape::Object(&[
    optional("test_mode", Shape::Flag),
    optional("trust_level", Shape::OneOf(&["SES", "AES", "QES"])),
    optional(
        "contract",
        Shape::Object(&[
            optional("contract_id", Shape::Text),
            optional("proposal_id", Shape::Text),
            optional(
                "bank_information",
                Shape::Object(&[
                    optional("account_holder", Shape::Text),
                    optional("iban", Shape::Text),
                    optional("bic", Shape::Text),
                ]),
            ),
        ]),
    ),
    optional(
        "issuer",
        Shape::Object(&[
            optional("name", Shape::Text),
            optional("email", Shape::Text),
            defaulted("role", Shape::OneOf(&["signer", "approver", "observer"])),
            optional("participant_id", Shape::Text),
        ]),
    ),
    defaulted("participants", Shape::List(&PARTICIPANT)),
    defaulted("observers", Shape::List(&OBSERVER)),
    optional(
        "signing_order",
        Shape::Object(&[
            defaulted("enabled", Shape::Flag),
            defaulted("grouped", Shape::Flag),
        ]),
    ),
    optional(
        "documents",
        Shape::Object(&[
            optional("main", FILE_REF),
            defaulted("attachments", Shape::List(&FILE_REF)),
        ]),
    ),
    optional(
        "communication",
        Shape::Object(&[
            required("send_emails", Shape::Flag),
            required("default_locale", Shape::Text),
        ]),
    ),
    optional(
        "metadata",
        Shape::Object(&[
            optional("lookup_key", Shape::Text),
            optional("success_callback_url", Shape::Text),
        ]),
    ),
    optional(
        "expires_in_days",
        Shape::WholeNumber {
            max: u16::MAX as u64,
            words: "a whole number from 1 to 365",
        },
    ),
]);

/// The body of `POST /v1/agreements/{id}/lifecycle`; `input` is read by [`CANCELLATION_INPUT`].
pub const LIFECYCLE_BODY: Shape = Shape::Object(&[
    required(
        "lifecycle_state",
        Shape::OneOf(&["pending", "open", "cancelled"]),
    ),
    optional("input", Shape::Any),
]);

/// `input` of a `cancelled` lifecycle request. Which reasons exist and how long a description is
/// are the cancellation rules' (422), not the shape's.
pub const CANCELLATION_INPUT: Shape = Shape::Object(&[
    optional("reason", Shape::Text),
    optional("description", Shape::Text),
]);

// `expires_in_days` quotes these bounds: a change there must be a change of its words.
const _: () = assert!(*EXPIRES_IN_DAYS.start() == 1 && *EXPIRES_IN_DAYS.end() == 365);

/// At most this many problems are listed: a body of a million wrong values gets a bounded answer.
pub const MAX_PROBLEMS: usize = 100;
/// Keys a client sent that are not fields are quoted back at most this long.
const MAX_QUOTED_CHARS: usize = 100;

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// Where a problem is: a field of the body, or a query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Body { pointer: String, field: String },
    Query { parameter: String },
}

impl Place {
    pub fn body(path: &[Step]) -> Place {
        Place::Body {
            pointer: pointer(path),
            field: dotted(path),
        }
    }

    /// The whole body.
    pub fn root() -> Place {
        Place::body(&[])
    }

    pub fn query(parameter: &str) -> Place {
        Place::Query {
            parameter: quoted(parameter),
        }
    }

    /// How messages name the place: the dotted field or the parameter.
    fn name(&self) -> &str {
        match self {
            Place::Body { field, .. } => field,
            Place::Query { parameter } => parameter,
        }
    }
}

/// One reason a request does not fit, in the API's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub place: Place,
    pub message: String,
}

impl Problem {
    /// `` `field` `` followed by `says`: "`metadata` must be an object".
    pub fn at(place: Place, says: &str) -> Problem {
        let message = format!("`{}` {says}", place.name());
        Problem { place, message }
    }

    /// A problem of the whole body, said as is.
    pub fn of_body(message: impl Into<String>) -> Problem {
        Problem {
            place: Place::root(),
            message: message.into(),
        }
    }

    /// 400 `INVALID_REQUEST` for this one problem.
    pub fn into_error(self) -> ApiError {
        let mut problems = Problems::default();
        problems.push(self);
        problems.into_error()
    }

    /// The `error.details` entry.
    pub fn detail(&self) -> Value {
        match &self.place {
            Place::Body { pointer, field } => json!({
                "type": "INVALID_REQUEST",
                "pointer": pointer,
                "field": field,
                "message": self.message,
            }),
            Place::Query { parameter } => json!({
                "type": "INVALID_REQUEST",
                "parameter": parameter,
                "field": parameter,
                "message": self.message,
            }),
        }
    }
}

/// The problems of one request, bounded by [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<Problem>,
    unlisted: usize,
}

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(problem);
        } else {
            self.unlisted += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// 400 `INVALID_REQUEST`: the first problem as the message, or a count; each in `details`.
    pub fn into_error(self) -> ApiError {
        let message = match (self.listed.as_slice(), self.unlisted) {
            ([only], 0) => only.message.clone(),
            (listed, 0) => format!(
                "the request has {} problems, each listed in details",
                listed.len()
            ),
            (listed, unlisted) => format!(
                "the request has {} problems; the first {} are listed in details",
                listed.len() + unlisted,
                listed.len()
            ),
        };
        ApiError::invalid_request(message).with_details(
            self.listed
                .iter()
                .map(Problem::detail)
                .collect::<Vec<Value>>(),
        )
    }
}

/// The body as a JSON object, or 400 saying why it is not one.
pub fn json_object(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| Problem::of_body(not_json(&error, body)).into_error())?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Problem::of_body("the body must be a JSON object").into_error())
    }
}

/// What to say of a body that is not JSON, with where it went wrong.
pub fn not_json(error: &serde_json::Error, body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "the body is empty; it must be a JSON object".to_owned();
    }
    let place = format!("line {}, column {}", error.line(), error.column());
    match error.classify() {
        serde_json::error::Category::Eof => {
            format!("the body is not valid JSON: it ends too early ({place})")
        }
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Data => format!("the body is not valid JSON ({place})"),
    }
}

/// Reads `value` (found at `at` in the body) as a `T`; 400 with every problem `shape` finds.
pub fn read<T: DeserializeOwned>(value: &Value, shape: &Shape, at: &[Step]) -> Result<T, ApiError> {
    let mut problems = Problems::default();
    check(value, shape, &mut at.to_vec(), &mut problems);
    if !problems.is_empty() {
        return Err(problems.into_error());
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        // The shape accepts what serde refused: still say where, never how serde put it.
        let mut path = at.to_vec();
        path.extend(error.path().iter().filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Step::Key(quoted(key))),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                None
            }
        }));
        tracing::warn!(field = %dotted(&path), "a request shape accepts what its type refuses");
        problems.push(Problem::at(
            Place::body(&path),
            "has the wrong type or value",
        ));
        problems.into_error()
    })
}

/// Every way `value` does not fit `shape`.
pub fn check(value: &Value, shape: &Shape, path: &mut Vec<Step>, problems: &mut Problems) {
    match shape {
        Shape::Text => {
            if !value.is_string() {
                problems.push(Problem::at(Place::body(path), "must be text"));
            }
        }
        Shape::Flag => {
            if !value.is_boolean() {
                problems.push(Problem::at(Place::body(path), "must be true or false"));
            }
        }
        Shape::WholeNumber { max, words } => {
            if value.as_u64().is_none_or(|number| number > *max) {
                problems.push(Problem::at(Place::body(path), &format!("must be {words}")));
            }
        }
        Shape::OneOf(options) => {
            if !value.as_str().is_some_and(|text| options.contains(&text)) {
                problems.push(Problem::at(
                    Place::body(path),
                    &format!("must be one of {}", listing(options)),
                ));
            }
        }
        Shape::Object(fields) => {
            let Some(object) = value.as_object() else {
                problems.push(Problem::at(Place::body(path), "must be an object"));
                return;
            };
            for (key, child) in object {
                let Some(field) = fields.iter().find(|field| field.name == key) else {
                    let of = match path.is_empty() {
                        true => "this request".to_owned(),
                        false => format!("`{}`", dotted(path)),
                    };
                    path.push(Step::Key(quoted(key)));
                    let names: Vec<&str> = fields.iter().map(|field| field.name).collect();
                    problems.push(Problem::at(
                        Place::body(path),
                        &format!("is not a field of {of}; known fields: {}", listing(&names)),
                    ));
                    path.pop();
                    continue;
                };
                if child.is_null() && field.presence == Presence::Optional {
                    continue;
                }
                path.push(Step::Key(key.clone()));
                check(child, &field.shape, path, problems);
                path.pop();
            }
            for field in fields.iter() {
                if field.presence == Presence::Required && !object.contains_key(field.name) {
                    path.push(Step::Key(field.name.to_owned()));
                    problems.push(Problem::at(Place::body(path), "is required"));
                    path.pop();
                }
            }
        }
        Shape::List(item) => {
            let Some(items) = value.as_array() else {
                problems.push(Problem::at(Place::body(path), "must be an array"));
                return;
            };
            for (index, child) in items.iter().enumerate() {
                path.push(Step::Index(index));
                check(child, item, path, problems);
                path.pop();
            }
        }
        Shape::Any => {}
    }
}

/// `` `a`, `b`, `c` ``.
pub fn listing(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A client's own text, cut to a length worth quoting back.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// RFC 6901: `/participants/0/role`; the whole document is the empty string.
pub fn pointer(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
            Step::Index(index) => format!("/{index}"),
        })
        .collect()
}

/// The dotted path of 422 issues: `participants[0].role`.
pub fn dotted(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// For the tests of each shape: the shape accepts exactly what serde accepts as a `T` (but for an
/// array where an object belongs, which only serde takes), for every field of `valid` (which must
/// hold every field, and one item in every array) replaced by each of a set of probes, left out,
/// or joined by an unknown field.
#[cfg(test)]
pub(crate) fn assert_shape_agrees_with_serde<T: DeserializeOwned>(shape: &Shape, valid: &Value) {
    fn accepts(shape: &Shape, value: &Value) -> bool {
        let mut problems = Problems::default();
        check(value, shape, &mut Vec::new(), &mut problems);
        problems.is_empty()
    }
    fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    let here = format!("{at}/{key}");
                    out.push(here.clone());
                    pointers(child, here, out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    let here = format!("{at}/{index}");
                    out.push(here.clone());
                    pointers(child, here, out);
                }
            }
            _ => {}
        }
    }
    let probes = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(1),
        json!(365),
        json!(366),
        json!(65535),
        json!(65536),
        json!(4_294_967_295_u64),
        json!(4_294_967_296_u64),
        json!(u64::MAX),
        json!(-1),
        json!(1.5),
        json!(100.0),
        json!(""),
        json!("x"),
        json!("signer"),
        json!("approver"),
        json!("observer"),
        json!("viewer"),
        json!("cc"),
        json!("SES"),
        json!("QES"),
        json!("pending"),
        json!("cancelled"),
        json!([]),
        json!([1]),
        json!({}),
    ];
    /// The shape of the value at `pointer` (of a document that fits `shape`).
    fn shape_at<'a>(shape: &'a Shape, pointer: &str) -> Option<&'a Shape> {
        let mut here = shape;
        for step in pointer.split('/').skip(1) {
            here = match here {
                Shape::Object(fields) => &fields.iter().find(|field| field.name == step)?.shape,
                Shape::List(item) => item,
                Shape::Text
                | Shape::Flag
                | Shape::WholeNumber { .. }
                | Shape::OneOf(_)
                | Shape::Any => return None,
            };
        }
        Some(here)
    }
    let serde_accepts = |value: &Value| serde_json::from_value::<T>(value.clone()).is_ok();
    assert!(serde_accepts(valid), "the sample is valid: {valid}");
    assert!(
        accepts(shape, valid),
        "the shape accepts the sample: {valid}"
    );
    let mut all = vec![String::new()];
    pointers(valid, String::new(), &mut all);
    let mut checked = 0;
    for at in &all {
        let mut variants = Vec::new();
        if let Some((parent, last)) = at.rsplit_once('/') {
            let object_here = matches!(shape_at(shape, at), Some(Shape::Object(_)));
            for probe in &probes {
                if object_here && probe.is_array() {
                    let mut changed = valid.clone();
                    *changed.pointer_mut(at).unwrap() = probe.clone();
                    assert!(!accepts(shape, &changed), "an array for the object at {at}");
                    continue;
                }
                let mut changed = valid.clone();
                *changed.pointer_mut(at).unwrap() = probe.clone();
                variants.push((format!("{at} = {probe}"), changed));
            }
            let mut changed = valid.clone();
            if let Some(Value::Object(object)) = changed.pointer_mut(parent) {
                object.remove(last);
                variants.push((format!("{at} left out"), changed));
            }
        }
        if valid.pointer(at).is_some_and(Value::is_object) {
            let mut changed = valid.clone();
            changed.pointer_mut(at).unwrap()["zz_not_a_field"] = json!(1);
            variants.push((format!("{at} with an unknown field"), changed));
        }
        for (what, value) in variants {
            assert_eq!(
                accepts(shape, &value),
                serde_accepts(&value),
                "shape and serde disagree on {what}"
            );
            checked += 1;
        }
    }
    assert!(checked > probes.len(), "probes ran: {checked}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_domain::AgreementInput;

    fn full_agreement_input() -> Value {
        let file = json!({"id": "f1", "filename": "a.pdf", "mime_type": "application/pdf",
                          "size": 10, "sha256": "ab", "uri": "s3://b/a.pdf"});
        json!({
            "test_mode": true,
            "trust_level": "AES",
            "contract": {"contract_id": "C", "proposal_id": "P",
                         "bank_information": {"account_holder": "A", "iban": "I", "bic": "B"}},
            "issuer": {"name": "I", "email": "i@x", "role": "observer", "participant_id": "p"},
            "participants": [{"id": "p", "name": "P", "email": "p@x", "role": "signer",
                              "signing_group": 1}],
            "observers": [{"id": "o", "name": "O", "email": "o@x", "scope": "cc"}],
            "signing_order": {"enabled": true, "grouped": true},
            "documents": {"main": file, "attachments": [file]},
            "communication": {"send_emails": true, "default_locale": "en"},
            "metadata": {"lookup_key": "k", "success_callback_url": "https://x"},
            "expires_in_days": 30
        })
    }

    #[test]
    fn the_agreement_input_shape_accepts_what_serde_accepts() {
        assert_shape_agrees_with_serde::<AgreementInput>(&AGREEMENT_INPUT, &full_agreement_input());
    }

    #[test]
    fn the_sample_holds_every_field_serde_writes() {
        // A field added to the input type but not to the shape shows up here.
        let input: AgreementInput = serde_json::from_value(full_agreement_input()).unwrap();
        let written = serde_json::to_value(&input).unwrap();
        let mut problems = Problems::default();
        check(&written, &AGREEMENT_INPUT, &mut Vec::new(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(written, full_agreement_input());
    }

    #[test]
    fn pointers_escape_and_dotted_paths_read_like_422_fields() {
        let path = [
            Step::Key("participants".into()),
            Step::Index(0),
            Step::Key("role".into()),
        ];
        assert_eq!(pointer(&path), "/participants/0/role");
        assert_eq!(dotted(&path), "participants[0].role");
        assert_eq!(pointer(&[Step::Key("a/b~c".into())]), "/a~1b~0c");
        assert_eq!(pointer(&[]), "");
        assert_eq!(dotted(&[]), "");
    }

    #[test]
    fn problems_are_bounded_and_counted() {
        let body = json!({"participants": vec![json!(1); MAX_PROBLEMS + 5]});
        let error = read::<AgreementInput>(&body, &AGREEMENT_INPUT, &[]).unwrap_err();
        assert_eq!(error.details.len(), MAX_PROBLEMS);
        assert!(
            error.message.contains(&format!("{}", MAX_PROBLEMS + 5)),
            "{}",
            error.message
        );
    }

    #[test]
    fn quoted_keys_are_cut() {
        let long = "k".repeat(5000);
        let body = json!({ long.clone(): 1 });
        let error = read::<AgreementInput>(&body, &AGREEMENT_INPUT, &[]).unwrap_err();
        let pointer = error.details[0]["pointer"].as_str().unwrap();
        assert!(pointer.chars().count() <= MAX_QUOTED_CHARS + 2, "{pointer}");
    }

    #[test]
    fn a_drifted_shape_still_points_at_the_field_in_api_words() {
        // A shape that takes anything for a field serde reads as a number.
        const LOOSE: Shape = Shape::Object(&[optional("expires_in_days", Shape::Any)]);
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Strict {
            expires_in_days: Option<u16>,
        }
        let error = read::<Strict>(&json!({"expires_in_days": 1.5}), &LOOSE, &[]).unwrap_err();
        assert_eq!(error.details[0]["pointer"], "/expires_in_days");
        assert_eq!(
            error.message,
            "`expires_in_days` has the wrong type or value"
        );
    }
}
