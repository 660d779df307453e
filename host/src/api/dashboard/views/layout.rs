//! The document every dashboard page shares: head, stylesheet and body. No page loads
//! anything from elsewhere.

use maud::Markup;

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

/// A whole page titled `title` around `body`.
pub fn page(title: &str, body: Markup) -> Markup {
    crate::html_document::document(&format!("{title} · instanode"), STYLE, body)
}
