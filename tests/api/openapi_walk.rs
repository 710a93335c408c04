//! Reads the running application's `/api/openapi.json` into a list of operations, with their
//! parameters and request body schemas resolved, and builds well-formed sample inputs from
//! them, so that a test can send something to every operation the API documents: a new
//! route is covered as soon as it is documented.

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::helpers::{enc, TestApp};

pub struct Operation {
    pub method: Method,
    /// The path template, as `/api/articles/{slug}`.
    pub template: String,
    /// Whether the operation declares a security requirement (takes a token).
    pub secured: bool,
    pub path_params: Vec<Param>,
    pub query_params: Vec<Param>,
    /// The JSON request body's schema, `$ref`s resolved; `None` without a JSON body.
    pub body: Option<Value>,
}

pub struct Param {
    pub name: String,
    pub required: bool,
    pub schema: Value,
}

impl Operation {
    /// `METHOD /template`, for assertion messages.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    /// The path with every parameter given a sample value, except those in `overrides`
    /// (already percent-encoded), followed by the required query parameters (and those in
    /// `query`, already encoded).
    pub fn url(&self, overrides: &[(&str, &str)], query: &[(&str, &str)]) -> String {
        let mut path = self.template.clone();
        for param in &self.path_params {
            let value = overrides
                .iter()
                .find(|(name, _)| *name == param.name)
                .map(|(_, value)| value.to_string())
                .unwrap_or_else(|| enc(&sample_text(&param.schema)));
            path = path.replace(&format!("{{{}}}", param.name), &value);
        }
        let mut pairs: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        for param in self.query_params.iter().filter(|p| p.required) {
            if !query.iter().any(|(name, _)| *name == param.name) {
                pairs.push(format!(
                    "{}={}",
                    param.name,
                    enc(&sample_text(&param.schema))
                ));
            }
        }
        if pairs.is_empty() {
            path
        } else {
            format!("{path}?{}", pairs.join("&"))
        }
    }

    /// A well-formed body for this operation, if it takes a JSON body.
    pub fn sample_body(&self) -> Option<Value> {
        self.body.as_ref().map(sample)
    }
}

/// Every operation of the running application's OpenAPI document.
pub async fn operations(app: &TestApp) -> Vec<Operation> {
    let (status, doc) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut operations = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let mut path_params = Vec::new();
            let mut query_params = Vec::new();
            for param in operation["parameters"].as_array().into_iter().flatten() {
                let parsed = Param {
                    name: param["name"].as_str().expect("a name").to_string(),
                    required: param["required"] == true,
                    schema: resolve(&doc, &param["schema"]),
                };
                match param["in"].as_str() {
                    Some("path") => path_params.push(parsed),
                    Some("query") => query_params.push(parsed),
                    _ => {}
                }
            }
            let body = operation["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|schema| resolve(&doc, &Value::Object(schema.clone())));
            operations.push(Operation {
                method,
                template: template.clone(),
                secured: operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty()),
                path_params,
                query_params,
                body,
            });
        }
    }
    assert!(operations.len() > 40, "the document lists the API");
    operations
}

/// `schema` with every `$ref` replaced by the component it names.
fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema {
        Value::Object(fields) => {
            if let Some(reference) = fields.get("$ref").and_then(Value::as_str) {
                let name = reference.trim_start_matches("#/components/schemas/");
                return resolve(doc, &doc["components"]["schemas"][name]);
            }
            Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), resolve(doc, value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(doc, v)).collect()),
        other => other.clone(),
    }
}

/// The schema's types, `type: "x"` and `type: ["x", "null"]` alike.
fn types(schema: &Value) -> Vec<&str> {
    match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A value of a resolved schema: every object property present, strings `x` (or the first
/// allowed value), numbers 1, arrays of one item.
pub fn sample(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(choices) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        let choice = choices
            .iter()
            .find(|c| types(c) != ["null"])
            .expect("a non-null choice");
        return sample(choice);
    }
    let kinds = types(schema);
    if kinds.contains(&"object") || schema.get("properties").is_some() {
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        return Value::Object(
            properties
                .iter()
                .map(|(name, property)| (name.clone(), sample(property)))
                .collect::<Map<_, _>>(),
        );
    }
    if kinds.contains(&"array") {
        return json!([sample(&schema["items"])]);
    }
    if kinds.contains(&"integer") || kinds.contains(&"number") {
        return json!(1);
    }
    if kinds.contains(&"boolean") {
        return json!(true);
    }
    json!("x")
}

fn sample_text(schema: &Value) -> String {
    match sample(schema) {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Where a body's string fields are, as paths of object keys and array indexes, with the
/// name the API gives each in its errors (`article.tagList[0]`). A body that is a bare string
/// (the vendor's signed webhook, checked by its signature) has no fields.
pub fn string_fields(schema: &Value) -> Vec<(Vec<Step>, String)> {
    let mut found = Vec::new();
    collect_strings(schema, &mut Vec::new(), String::new(), &mut found);
    found
}

#[derive(Clone)]
pub enum Step {
    Key(String),
    Index(usize),
}

fn collect_strings(
    schema: &Value,
    steps: &mut Vec<Step>,
    name: String,
    found: &mut Vec<(Vec<Step>, String)>,
) {
    if schema["enum"].is_array() {
        return;
    }
    if let Some(choices) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        if let Some(choice) = choices.iter().find(|c| types(c) != ["null"]) {
            collect_strings(choice, steps, name, found);
        }
        return;
    }
    let kinds = types(schema);
    if let Some(properties) = schema["properties"].as_object() {
        for (key, property) in properties {
            steps.push(Step::Key(key.clone()));
            let field = if name.is_empty() {
                key.clone()
            } else {
                format!("{name}.{key}")
            };
            collect_strings(property, steps, field, found);
            steps.pop();
        }
    } else if kinds.contains(&"array") {
        steps.push(Step::Index(0));
        collect_strings(&schema["items"], steps, format!("{name}[0]"), found);
        steps.pop();
    } else if kinds.contains(&"string") && !name.is_empty() {
        found.push((steps.clone(), name));
    }
}

/// `value` with the field at `steps` replaced by `replacement`.
pub fn with_field(mut value: Value, steps: &[Step], replacement: Value) -> Value {
    let mut slot = &mut value;
    for step in steps {
        slot = match step {
            Step::Key(key) => &mut slot[key.as_str()],
            Step::Index(i) => &mut slot[*i],
        };
    }
    *slot = replacement;
    value
}
