//! One deployment's page; `scripts::DEPLOYMENT` fills in its status, log and autopsy.

use maud::{Markup, html};

use super::{layout, scripts};

pub fn page(id: &str) -> Markup {
    layout::page(
        "Deployment",
        html! {
            h1 { "Deployment " code { (id) } }
            p { "Status: " span #status .status { "loading" } " · " a #url href="#" {} }
            div #autopsy {}
            h2 { "Log" }
            pre #log data-deployment=(id) {}
            (scripts::DEPLOYMENT)
        },
    )
}
