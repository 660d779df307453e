//! The dashboard's HTML. Everything shown is escaped; no page loads anything from elsewhere.

use serde_json::Value;

use crate::html::escape;
use crate::store::Account;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2430}
h1{font-size:1.4rem}a{color:#2357c6}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e3e7ee;vertical-align:middle}
th{font-size:.8rem;text-transform:uppercase;color:#5b6576}
.bar{background:#e8ecf3;border-radius:4px;height:.6rem;width:9rem;overflow:hidden}
.bar>span{display:block;height:100%;background:#3d7be0}.bar.full>span{background:#d64545}
.muted{color:#6b7585;font-size:.85rem}pre{background:#10151f;color:#d8dee9;padding:1rem;
border-radius:6px;max-height:28rem;overflow:auto;font-size:.8rem}
.status{font-weight:600}.failed{color:#c0392b}.healthy{color:#1e8449}
form.inline{display:inline}button{font:inherit;padding:.35rem .8rem}
.notice{background:#eaf4ea;border-left:4px solid #1e8449;padding:.5rem .8rem}
.refusal{background:#fbeaea;border-left:4px solid #c0392b;padding:.5rem .8rem}
code.secret{word-break:break-all}dl{display:grid;grid-template-columns:10rem 1fr;gap:.3rem 1rem}dt{color:#5b6576}dd{margin:0}";

/// Counts down every `.ttl` element's `data-expires` once a second.
pub(super) const COUNTDOWN: &str = "<script>
function tick() {
  for (const el of document.querySelectorAll('.ttl')) {
    const left = Math.max(0, Date.parse(el.dataset.expires) - Date.now()) / 1000;
    const h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = Math.floor(left % 60);
    el.textContent = left > 0 ? h + 'h ' + String(m).padStart(2, '0') + 'm ' + String(s).padStart(2, '0') + 's' : 'expired';
  }
}
tick(); setInterval(tick, 1000);
</script>";

/// A refusal, for people: what happened and where to go from here.
pub(super) fn refusal(code: &str, message: &str) -> String {
    layout(
        "Not possible",
        &format!(
            "<h1>That did not work</h1>{}<p><a href=\"/dashboard\">Back to the dashboard</a></p>",
            refusal_line(code, message, None)
        ),
    )
}

/// One refusal paragraph: the stable code, then the message (`id` lets a script find it).
pub(super) fn refusal_line(code: &str, message: &str, id: Option<&str>) -> String {
    let id = id
        .map(|id| format!(" id=\"{}\"", escape(id)))
        .unwrap_or_default();
    format!(
        "<p class=\"refusal\"{id}><code>{}</code>: {}</p>",
        escape(code),
        escape(message)
    )
}

/// The lifetime cell: a live countdown, or "never".
pub(super) fn expires(item: &Value) -> String {
    match item["expires_at"].as_str() {
        Some(at) => format!(
            "<span class=\"ttl\" data-expires=\"{}\"></span>",
            escape(at)
        ),
        None => "never".to_string(),
    }
}

pub(super) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} · instanode</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

pub fn sign_in() -> String {
    layout(
        "Sign in",
        r#"<h1>Sign in to instanode</h1>
<p>We email you a link; following it signs this browser in.</p>
<form id="signin"><input type="email" name="email" required placeholder="you@example.com" size="32">
<button type="submit">Email me a link</button></form>
<p id="sent" class="muted"></p>
<script>
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
</script>"#,
    )
}

/// A `used / limit` bar for a resource with a storage or memory limit.
pub(super) fn usage_bar(item: &Value) -> String {
    let used = item["storage_bytes"].as_u64();
    let limit = item["storage_limit_bytes"].as_u64();
    match (used, limit) {
        (Some(used), Some(limit)) if limit > 0 => {
            let percent = (used.saturating_mul(100) / limit).min(100);
            let full = if item["storage_exceeded"] == true {
                " full"
            } else {
                ""
            };
            format!(
                "<div class=\"bar{full}\" role=\"meter\" aria-valuenow=\"{percent}\" aria-valuemin=\"0\" aria-valuemax=\"100\" title=\"{percent}%\"><span style=\"width:{percent}%\"></span></div>\
                 <span class=\"muted\">{} of {}</span>",
                megabytes(used),
                megabytes(limit)
            )
        }
        (None, Some(limit)) => format!(
            "<span class=\"muted\">not measured yet (limit {})</span>",
            megabytes(limit)
        ),
        _ => "<span class=\"muted\">-</span>".to_string(),
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// `app_kinds`: the kinds whose resources are apps, linked to their deployment page.
pub fn overview(account: &Account, items: &[Value], app_kinds: &[String]) -> String {
    let text = |v: &Value| escape(v.as_str().unwrap_or("-"));
    let rows: String = items
        .iter()
        .map(|item| {
            let is_app = app_kinds.iter().any(|k| item["kind"] == k.as_str());
            let name = if is_app {
                format!(
                    "<a href=\"/dashboard/deployments/{}\">{}</a>",
                    text(&item["token"]),
                    text(&item["name"])
                )
            } else {
                format!(
                    "<a href=\"/dashboard/resources/{}\">{}</a>",
                    text(&item["token"]),
                    text(&item["name"])
                )
            };
            let expires = expires(item);
            format!(
                "<tr data-token=\"{}\"><td>{}</td><td>{name}</td><td class=\"status\">{}</td><td>{}</td><td>{expires}</td></tr>",
                text(&item["token"]),
                text(&item["kind"]),
                text(&item["status"]),
                usage_bar(item),
            )
        })
        .collect();
    let table = if items.is_empty() {
        "<p>No resources yet. Create one with <code>POST /db/new</code> and your API key.</p>"
            .to_string()
    } else {
        format!(
            "<table><thead><tr><th>kind</th><th>name</th><th>status</th><th>usage</th><th>expires in</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    layout(
        "Resources",
        &format!(
            r#"<h1>Resources of {team}</h1>
<div class="muted">Signed in as {email} · tier {tier}
<form class="inline" method="post" action="/dashboard/logout"><button>Sign out</button></form></div>
{table}
{COUNTDOWN}"#,
            team = escape(&account.team_name),
            email = escape(&account.email),
            tier = escape(&account.tier),
        ),
    )
}

/// `id` is a plain token (checked by the caller), so it is safe inside the script too.
pub fn deployment(id: &str) -> String {
    layout(
        "Deployment",
        &format!(
            r##"<h1>Deployment <code>{id}</code></h1>
<p>Status: <span id="status" class="status">loading</span> · <a id="url" href="#"></a></p>
<div id="autopsy"></div>
<h2>Log</h2>
<pre id="log"></pre>
<script>
const id = '{id}';
const log = document.getElementById('log');
async function refresh() {{
  const answer = await fetch('/api/v1/deployments/' + id);
  const body = await answer.json();
  const status = document.getElementById('status');
  if (!body.ok) {{ status.textContent = body.error + ': ' + body.message; return; }}
  status.textContent = body.item.status;
  status.className = 'status ' + body.item.status;
  const url = document.getElementById('url');
  url.textContent = body.item.url; url.href = body.item.url;
  if (body.item.status === 'failed') {{
    const events = await (await fetch('/api/v1/deployments/' + id + '/events')).json();
    const e = (events.events || [])[0];
    if (e) {{
      const box = document.getElementById('autopsy');
      box.innerHTML = '<h2>Why it failed</h2><p><b></b></p><p class="muted"></p><pre></pre>';
      box.querySelector('b').textContent = e.reason + (e.exit_code == null ? '' : ' (exit ' + e.exit_code + ')');
      box.querySelector('.muted').textContent = e.hint || '';
      box.querySelector('pre').textContent = (e.last_lines || []).join('\n');
    }}
    return;
  }}
  if (body.item.status !== 'healthy') setTimeout(refresh, 1500);
}}
const stream = new EventSource('/deploy/' + id + '/logs');
stream.onmessage = (event) => {{
  if (event.data === '[end]') {{ stream.close(); return; }}
  log.textContent += event.data + '\n';
  log.scrollTop = log.scrollHeight;
}};
refresh();
</script>"##
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_bars_are_capped_and_marked_when_exceeded() {
        let item = serde_json::json!({"storage_bytes": 30 << 20, "storage_limit_bytes": 10 << 20, "storage_exceeded": true});
        let bar = usage_bar(&item);
        assert!(bar.contains("aria-valuenow=\"100\""), "{bar}");
        assert!(bar.contains("bar full"), "{bar}");
    }
}
