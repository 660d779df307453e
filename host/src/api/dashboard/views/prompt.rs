//! Prompt cards: a change the dashboard does not make itself, written out as the exact
//! request, ready to copy and hand to an agent.

use maud::{Markup, html};

/// One change: what it does, and the request that does it.
pub struct Prompt {
    pub title: &'static str,
    pub method: &'static str,
    /// The path on this host.
    pub path: String,
    /// What the request carries, in words (`with the JSON body ...`), when it carries
    /// anything.
    pub body: Option<String>,
}

impl Prompt {
    pub fn new(title: &'static str, method: &'static str, path: impl Into<String>) -> Self {
        Self {
            title,
            method,
            path: path.into(),
            body: None,
        }
    }

    pub fn body(self, body: serde_json::Value) -> Self {
        Self {
            body: Some(format!(" with the JSON body {body}")),
            ..self
        }
    }

    /// A multipart upload; `fields` says which.
    pub fn multipart(self, fields: &str) -> Self {
        Self {
            body: Some(format!(" as multipart/form-data with {fields}")),
            ..self
        }
    }

    /// The words handed to the agent.
    fn text(&self, public_url: &str) -> String {
        let body = self.body.as_deref().unwrap_or_default();
        format!(
            "{}: send {} {public_url}{}{body}, authorized with my instanode API key (Authorization: Bearer <key>).",
            self.title, self.method, self.path
        )
    }
}

/// The cards for `prompts`, each with a copy button (`scripts::COPY`).
pub fn cards(public_url: &str, prompts: &[Prompt]) -> Markup {
    html! {
        @if !prompts.is_empty() {
            h2 { "Ask your agent" }
            p.muted { "Changes not offered as buttons: copy the prompt and give it to your agent." }
            div.prompts {
                @for (i, prompt) in prompts.iter().enumerate() {
                    @let id = format!("prompt-{i}");
                    div.prompt {
                        h3 { (prompt.title) }
                        pre id=(id) tabindex="0" { (prompt.text(public_url)) }
                        button.quiet type="button" data-copy=(id) { "Copy prompt" }
                    }
                }
            }
            (super::scripts::COPY)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_names_the_exact_request() {
        let prompt = Prompt::new("Extend its lifetime", "POST", "/api/v1/deployments/x/ttl")
            .body(serde_json::json!({ "hours": 48 }));
        assert_eq!(
            prompt.text("http://h"),
            "Extend its lifetime: send POST http://h/api/v1/deployments/x/ttl with the JSON body {\"hours\":48}, authorized with my instanode API key (Authorization: Bearer <key>)."
        );
    }
}
