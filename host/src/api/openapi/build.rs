//! A small builder for OpenAPI 3.1 operations, so the route table reads as a list.

use serde_json::{Map, Value, json};

/// How an operation is authorised.
#[derive(Clone, Copy)]
pub enum Auth {
    None,
    /// An API key, session or upgrade token is accepted but not needed.
    Optional,
    /// A bearer credential is needed (a team's API key or session, or an upgrade token).
    Required,
    /// The operator token.
    Admin,
}

pub struct Op {
    pub method: &'static str,
    pub path: &'static str,
    body: Map<String, Value>,
    responses: Map<String, Value>,
    parameters: Vec<Value>,
}

pub fn op(method: &'static str, path: &'static str, tag: &str, id: &str, summary: &str) -> Op {
    let mut body = Map::new();
    body.insert("operationId".into(), json!(id));
    body.insert("tags".into(), json!([tag]));
    body.insert("summary".into(), json!(summary));
    let parameters = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect();
    Op {
        method,
        path,
        body,
        responses: Map::new(),
        parameters,
    }
}

pub fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// An object schema: `properties` as `(name, schema)`, `required` names.
pub fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    json!({"type": "object", "properties": properties, "required": required})
}

pub fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

pub fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}

impl Op {
    pub fn describe(mut self, text: &str) -> Self {
        self.body.insert("description".into(), json!(text));
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        let security = match auth {
            Auth::None => return self,
            Auth::Optional => json!([{}, {"bearer": []}]),
            Auth::Required => json!([{"bearer": []}]),
            Auth::Admin => json!([{"admin": []}]),
        };
        self.body.insert("security".into(), security);
        self
    }

    pub fn header(mut self, name: &str, description: &str) -> Self {
        self.parameters.push(json!({
            "name": name, "in": "header", "required": false,
            "description": description, "schema": {"type": "string"},
        }));
        self
    }

    /// A query parameter of JSON type `kind` (`string`, `integer`).
    pub fn query(mut self, name: &str, required: bool, kind: &str, description: &str) -> Self {
        self.parameters.push(json!({
            "name": name, "in": "query", "required": required,
            "description": description, "schema": {"type": kind},
        }));
        self
    }

    fn request(mut self, content_type: &str, schema: Value) -> Self {
        self.body.insert(
            "requestBody".into(),
            json!({"required": true, "content": {content_type: {"schema": schema}}}),
        );
        self
    }

    pub fn json_body(self, schema: Value) -> Self {
        self.request("application/json", schema)
    }

    pub fn form_body(self, schema: Value) -> Self {
        self.request("multipart/form-data", schema)
    }

    /// A browser form (`application/x-www-form-urlencoded`).
    pub fn url_encoded_body(self, schema: Value) -> Self {
        self.request("application/x-www-form-urlencoded", schema)
    }

    /// A dashboard page: HTML on success and on refusal (`refusals` lists their statuses).
    pub fn html_page(mut self, refusals: &[u16]) -> Self {
        self = self.answers_as(200, "An HTML page.", "text/html");
        for status in refusals {
            self = self.answers_as(*status, "The refusal, as an HTML page.", "text/html");
        }
        self
    }

    pub fn binary_body(self, content_type: &str) -> Self {
        self.request(
            content_type,
            json!({"type": "string", "contentMediaType": content_type}),
        )
    }

    /// A success answer with a JSON body.
    pub fn answers(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    /// A success answer in another media type (text, HTML, an event stream).
    pub fn answers_as(mut self, status: u16, description: &str, content_type: &str) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {content_type: {"schema": {"type": "string"}}}}),
        );
        self
    }

    /// A success answer without a body.
    pub fn answers_empty(mut self, status: u16, description: &str) -> Self {
        self.responses
            .insert(status.to_string(), json!({"description": description}));
        self
    }

    /// The operation object; every failure answers with the error envelope.
    pub fn finish(mut self) -> Value {
        if !self.parameters.is_empty() {
            self.body
                .insert("parameters".into(), Value::Array(self.parameters));
        }
        self.responses.insert(
            "default".into(),
            json!({
                "description": "A refusal or failure, in the error envelope (see its `error` code and `agent_action`).",
                "content": {"application/json": {"schema": reference("Error")}},
            }),
        );
        self.body
            .insert("responses".into(), Value::Object(self.responses));
        Value::Object(self.body)
    }
}
