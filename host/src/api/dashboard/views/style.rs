//! The dashboard's one stylesheet: a few CSS variables for colour, light and dark from the
//! browser's preference, and components small enough to read in one go. Served under a
//! name that carries its hash (`assets`), so browsers keep it until it changes.

/// The tab icon: a rounded square with a node.
pub const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1d54bd"/><circle cx="16" cy="16" r="6" fill="#fff"/></svg>"##;

pub const STYLESHEET: &str = r#"
:root{--bg:#ffffff;--surface:#f5f7fa;--text:#18202c;--muted:#4f5a6b;--border:#d5dce6;
--accent:#1d54bd;--accent-text:#ffffff;--ok:#176b36;--warn:#7a4f00;--danger:#a52219;
--ok-bg:#e5f4ea;--warn-bg:#fdf1d8;--danger-bg:#fbe7e5;--info-bg:#e7eefb;--focus:#f0a500;
--code-bg:#0f1620;--code-text:#dfe6ef;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0e131a;--surface:#161d27;--text:#e5eaf1;
--muted:#a3aec0;--border:#2c3645;--accent:#86b4ff;--accent-text:#0e131a;--ok:#7fdc9f;
--warn:#f3c865;--danger:#ff9a90;--ok-bg:#12301f;--warn-bg:#33290f;--danger-bg:#3a1715;
--info-bg:#172540;--code-bg:#070a0f;--code-text:#dfe6ef}}
*{box-sizing:border-box}
body{margin:0;overflow-wrap:break-word;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--text)}
a{color:var(--accent)}a:hover{text-decoration-thickness:2px}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5rem}.skip:focus{left:.5rem}
header.top{border-bottom:1px solid var(--border);background:var(--surface)}
.top-inner{max-width:72rem;margin:0 auto;padding:.6rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.2rem}
.brand{font-weight:700;color:var(--text);text-decoration:none;font-size:1.05rem}
nav.main ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.2rem}
nav.main a{display:block;padding:.35rem .65rem;border-radius:6px;color:var(--text);text-decoration:none}
nav.main a:hover{background:var(--border)}
nav.main a[aria-current=page]{background:var(--accent);color:var(--accent-text)}
.who{margin-left:auto;overflow-wrap:anywhere;display:flex;align-items:center;gap:.5rem;flex-wrap:wrap;color:var(--muted);font-size:.9rem}
main{max-width:72rem;margin:0 auto;padding:1.2rem 1rem 3rem}
h1{font-size:1.5rem;margin:.3rem 0 1rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}h3{font-size:1rem;margin:.2rem 0 .4rem}
.muted{color:var(--muted);font-size:.9rem}time{white-space:nowrap}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(13rem,1fr));gap:.8rem}
.card{background:var(--surface);border:1px solid var(--border);border-radius:10px;padding:.8rem 1rem}
.card .figure{font-size:1.6rem;font-weight:650}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.5rem .55rem;border-bottom:1px solid var(--border);vertical-align:middle}
th{font-size:.78rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
.pill{display:inline-block;padding:.05rem .5rem;border-radius:999px;border:1px solid var(--border);background:var(--surface);font-size:.8rem;color:var(--text);white-space:nowrap}
.pill.healthy,.pill.active{background:var(--ok-bg)}.pill.failed,.pill.suspended{background:var(--danger-bg)}
.pill.building,.pill.deploying,.pill.pending,.pill.deleting{background:var(--warn-bg)}
.bar{display:inline-block;vertical-align:middle;background:var(--border);border-radius:4px;height:.55rem;width:8rem;overflow:hidden;margin-right:.4rem}
.bar>span{display:block;height:100%;background:var(--accent)}.bar.near>span{background:var(--warn)}.bar.full>span{background:var(--danger)}
pre{background:var(--code-bg);color:var(--code-text);padding:.9rem;border-radius:8px;max-height:28rem;overflow:auto;font-size:.8rem;white-space:pre-wrap;word-break:break-word}
code{font-family:ui-monospace,"SFMono-Regular",Menlo,monospace;font-size:.88em}
code.secret{word-break:break-all}
button,.button{font:inherit;padding:.4rem .85rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:var(--accent-text);cursor:pointer;text-decoration:none;display:inline-block}
button.quiet{background:transparent;color:var(--accent)}
button.danger{background:var(--danger);border-color:var(--danger);color:var(--bg)}
input,select{max-width:100%;font:inherit;padding:.35rem .5rem;border-radius:6px;border:1px solid var(--muted);background:var(--bg);color:var(--text)}
label{font-weight:600;font-size:.9rem}
form.inline{display:inline}form.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0}
form.row div{display:flex;flex-direction:column;gap:.2rem}
.notice,.banner,.refusal{padding:.6rem .9rem;border-radius:8px;border-left:4px solid;margin:.8rem 0}
.notice{background:var(--ok-bg);border-color:var(--ok)}.banner{background:var(--warn-bg);border-color:var(--warn)}
.refusal{background:var(--danger-bg);border-color:var(--danger)}
dl{display:grid;grid-template-columns:11rem 1fr;gap:.35rem 1rem}dt{color:var(--muted)}dd{margin:0;min-width:0;overflow-wrap:anywhere}
.status{font-weight:600}.failed{color:var(--danger)}.healthy{color:var(--ok)}
.tabs{display:flex;flex-wrap:wrap;gap:.3rem;margin:.5rem 0 1rem}.tabs a{padding:.3rem .7rem;border:1px solid var(--border);border-radius:999px;text-decoration:none}
.tabs a[aria-current=page]{background:var(--accent);color:var(--accent-text);border-color:var(--accent)}
.prompts{display:grid;grid-template-columns:repeat(auto-fill,minmax(20rem,1fr));gap:.8rem}
.prompt{background:var(--info-bg);border:1px solid var(--border);border-radius:10px;padding:.8rem 1rem}
.prompt pre{margin:.4rem 0;overflow-wrap:anywhere}
.chart{width:100%;height:5rem;display:block;background:var(--surface);border:1px solid var(--border);border-radius:8px}
.chart polyline{fill:none;stroke:var(--accent);stroke-width:2;vector-effect:non-scaling-stroke}
.chart circle{fill:var(--accent)}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(18rem,1fr));gap:.8rem}
.empty{border:1px dashed var(--border);border-radius:10px;padding:1rem;color:var(--muted)}
.empty strong{color:var(--text)}
ul.activity{list-style:none;padding:0;margin:0}ul.activity li{padding:.35rem 0;border-bottom:1px solid var(--border)}
dialog{border:1px solid var(--border);border-radius:10px;background:var(--bg);color:var(--text);max-width:28rem}
dialog::backdrop{background:rgba(0,0,0,.45)}
@media (max-width:640px){dl{grid-template-columns:1fr}dt{margin-top:.4rem}.who{margin-left:0}
th,td{padding:.4rem .35rem}.bar{width:5rem}main{padding:1rem .7rem 2rem}}
"#;
