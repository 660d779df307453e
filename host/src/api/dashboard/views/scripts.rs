//! The pages' JavaScript. Each script is a constant: nothing from a request is ever written
//! into one. A script reads what it needs from its page (`data-*` attributes, which
//! `html!` escapes like any other value), so no script needs escaping rules of its own.

use maud::{Markup, PreEscaped, Render, html};

/// An inline `<script>` whose source is fixed at compile time.
pub struct Script(&'static str);

impl Script {
    #[cfg(test)]
    pub fn source(&self) -> &'static str {
        self.0
    }
}

impl Render for Script {
    fn render(&self) -> Markup {
        // Unescaped on purpose: a script's text is not HTML (`<`, `&&` must stay as written).
        html! { script { (PreEscaped(self.0)) } }
    }
}

/// Counts down every `.ttl` element's `data-expires` once a second.
pub const COUNTDOWN: Script = Script(
    "
function tick() {
  for (const el of document.querySelectorAll('.ttl')) {
    const left = Math.max(0, Date.parse(el.dataset.expires) - Date.now()) / 1000;
    const h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = Math.floor(left % 60);
    el.textContent = left > 0 ? h + 'h ' + String(m).padStart(2, '0') + 'm ' + String(s).padStart(2, '0') + 's' : 'expired';
  }
}
tick(); setInterval(tick, 1000);
",
);

/// Asks for a sign-in link for the email in `#signin` and says so in `#sent`.
pub const SIGN_IN: Script = Script(
    "
document.getElementById('signin').addEventListener('submit', async (event) => {
  event.preventDefault();
  const email = new FormData(event.target).get('email');
  const answer = await fetch('/auth/email/start', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({email})});
  const body = await answer.json();
  document.getElementById('sent').textContent = body.ok
    ? 'Check your inbox: the link works once, for ' + body.expires_in_minutes + ' minutes.'
    : body.message + ' ' + (body.agent_action || '');
});
",
);

/// Follows the deployment in `#log`'s `data-deployment`: its status until it settles, its
/// log lines as they come, and the autopsy when it failed.
pub const DEPLOYMENT: Script = Script(
    r#"
const log = document.getElementById('log');
const id = log.dataset.deployment;
async function refresh() {
  const answer = await fetch('/api/v1/deployments/' + id);
  const body = await answer.json();
  const status = document.getElementById('status');
  if (!body.ok) { status.textContent = body.error + ': ' + body.message; return; }
  status.textContent = body.item.status;
  status.className = 'status ' + body.item.status;
  const url = document.getElementById('url');
  url.textContent = body.item.url; url.href = body.item.url;
  if (body.item.status === 'failed') {
    const events = await (await fetch('/api/v1/deployments/' + id + '/events')).json();
    const e = (events.events || [])[0];
    if (e) {
      const box = document.getElementById('autopsy');
      box.innerHTML = '<h2>Why it failed</h2><p><b></b></p><p class="muted"></p><pre></pre>';
      box.querySelector('b').textContent = e.reason + (e.exit_code == null ? '' : ' (exit ' + e.exit_code + ')');
      box.querySelector('.muted').textContent = e.hint || '';
      box.querySelector('pre').textContent = (e.last_lines || []).join('\n');
    }
    return;
  }
  if (body.item.status !== 'healthy') setTimeout(refresh, 1500);
}
const stream = new EventSource('/deploy/' + id + '/logs');
stream.onmessage = (event) => {
  if (event.data === '[end]') { stream.close(); return; }
  log.textContent += event.data + '\n';
  log.scrollTop = log.scrollHeight;
};
refresh();
"#,
);

/// Sends `#claim`'s `data-token` with the email typed in; the answer goes to `#result`.
pub const CLAIM: Script = Script(
    r#"
const claim = document.getElementById("claim");
const token = claim.dataset.token;
claim.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/claim", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token, email: document.getElementById("email").value})});
  const body = await response.json();
  document.getElementById("result").textContent = body.ok ? body.message : (body.message || body.error) + " " + (body.agent_action || "");
});
"#,
);

/// Confirms the delete of `#confirm`: posts its `data-token` to its `data-url` and says
/// what happened in `#result`.
pub const CONFIRM_DELETION: Script = Script(
    r#"
const confirmForm = document.getElementById("confirm");
confirmForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const url = confirmForm.dataset.url + "?token=" + encodeURIComponent(confirmForm.dataset.token);
  const response = await fetch(url, {method: "POST"});
  const body = await response.json();
  document.getElementById("result").textContent = body.ok ? body.note : (body.message || body.error) + " " + (body.agent_action || "");
});
"#,
);

/// Uploads the file chosen in an `input.component` to the provider in its `data-provider`,
/// with the form token from `data-form-token` in the header `operator::FORM_TOKEN_HEADER`.
pub const UPLOAD: Script = Script(
    "
const formToken = document.querySelector('[data-form-token]').dataset.formToken;
for (const input of document.querySelectorAll('input.component')) {
  input.addEventListener('change', async () => {
    const notice = document.getElementById('notice');
    notice.textContent = 'Checking and loading ' + input.files[0].name + '…';
    const answer = await fetch('/dashboard/operator/providers/' + input.dataset.provider + '/upload', {
      method: 'POST', headers: {'x-instanode-form-token': formToken, 'Content-Type': 'application/octet-stream'},
      body: input.files[0]});
    const body = await answer.json();
    if (body.ok) { location.assign('/dashboard/operator'); return; }
    notice.className = 'refusal';
    notice.textContent = body.error + ': ' + body.message;
  });
}
",
);

/// Copies the text of the element a `[data-copy]` button names; where the clipboard is
/// not allowed, selects it instead so Ctrl+C does it.
pub const COPY: Script = Script(
    "
{
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const source = document.getElementById(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = 'Copied';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        button.textContent = 'Selected: press Ctrl+C';
      }
    });
  }
}
",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_script_can_end_its_element_early() {
        for script in [COUNTDOWN, SIGN_IN, DEPLOYMENT, CLAIM, UPLOAD, COPY] {
            assert!(
                !script.source().to_ascii_lowercase().contains("</script"),
                "{}",
                script.source()
            );
        }
    }
}
