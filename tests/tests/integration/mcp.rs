//! The MCP server at `/mcp`, driven by the official Python client (`mcp` from PyPI) over the
//! Streamable HTTP transport: tools follow the live providers, a database made through
//! `create_postgres` works, and failures carry `agent_action`.

use std::time::Duration;

use base64::Engine as _;
use instanode::api::schema::{
    Created, DeploymentAnswer, ErrorBody, JsonRpcAnswer, Resource, ResourceDeleted, RpcResult,
    Swap, Unloaded,
};
use instanode::store::DeploymentStatus;
use instanode_tests::deploy::{namespace_of, remove_namespace, static_site, wait_for_body};
use instanode_tests::{ADMIN_BEARER, HostOptions, ProviderSpec, TestHost, python};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

/// Runs one MCP session: `tools/list`, then each call of `CALLS` (a JSON list of
/// `[tool, arguments]`); prints `{"tools": [...], "results": [...]}`.
const CLIENT: &str = r#"
import asyncio, json, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

async def main(url, calls, headers):
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                results = []
                for name, arguments in calls:
                    result = await session.call_tool(name, arguments)
                    results.append({
                        "is_error": result.is_error,
                        "text": result.content[0].text,
                        "structured": result.structured_content,
                    })
                print(json.dumps({
                    "server": init.server_info.name,
                    "protocol": init.protocol_version,
                    "tools": sorted(t.name for t in tools.tools),
                    "schemas": {t.name: t.input_schema for t in tools.tools},
                    "results": results,
                }))

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])))
"#;

fn session(host: &TestHost, calls: Value) -> Value {
    session_with(host, calls, &json!({}))
}

/// A session whose HTTP requests carry `headers` (e.g. `Authorization`).
fn session_with(host: &TestHost, calls: Value, headers: &Value) -> Value {
    let out = python(
        CLIENT,
        &[
            &format!("{}/mcp", host.url),
            &calls.to_string(),
            &headers.to_string(),
        ],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A tool call's structured content (one of the client's `results`): the REST answer, as
/// the API's type.
fn structured<T: DeserializeOwned>(result: &Value) -> T {
    T::deserialize(&result["structured"])
        .unwrap_or_else(|e| panic!("{e}: {}", result["structured"]))
}

fn tool_names(session: &Value) -> Vec<&str> {
    session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_mcp_client_provisions_a_working_database_and_tools_follow_the_providers() {
    let host = TestHost::start(Default::default()).await;

    let first = session(
        &host,
        json!([
            ["create_postgres", {"name": "mcp-db"}],
            ["create_postgres", {"name": "bad name!"}],
            ["get_resource", {"token": "../admin/providers"}],
        ]),
    );
    assert_eq!(first["server"], "instanode");
    let tools = tool_names(&first);
    for expected in [
        "create_postgres",
        "create_vector",
        "create_webhook",
        "list_resources",
        "get_resource",
        "delete_resource",
        "presign_storage",
        "claim_resource",
    ] {
        assert!(
            tools.contains(&expected),
            "{expected} missing from {tools:?}"
        );
    }
    // This host runs no deploy provider, so its deploy tools are not offered.
    assert!(!tools.contains(&"create_deploy"), "{tools:?}");
    assert_eq!(
        first["schemas"]["create_postgres"]["required"],
        json!(["name"])
    );

    // The database made through the tool answers its own URL.
    let created = &first["results"][0];
    assert_eq!(created["is_error"], false, "{created}");
    let resource: Created = structured(created);
    let mut conn = PgConnection::connect(&resource.connection_url)
        .await
        .expect("the URL connects");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();

    // A refusal is a tool error that says what to do, with the API's own code.
    let refused = &first["results"][1];
    assert_eq!(refused["is_error"], true, "{refused}");
    let refusal: ErrorBody = structured(refused);
    assert_eq!(refusal.error, "invalid_name", "{refused}");
    assert!(
        refused["text"].as_str().unwrap().contains("agent_action: "),
        "{refused}"
    );
    assert!(!refusal.agent_action.unwrap_or_default().is_empty());
    // A token that tries to leave its route is refused before any request is made.
    let escaped = &first["results"][2];
    assert_eq!(escaped["is_error"], true);
    assert_eq!(structured::<ErrorBody>(escaped).error, "invalid_arguments");

    // The token from the create answers get_resource through the tool as through REST.
    let token = resource.token.to_string();
    let again = session(&host, json!([["get_resource", {"token": token}]]));
    let item = &again["results"][0]["structured"];
    assert_eq!(again["results"][0]["is_error"], false, "{item}");
    let rest = host.get(&format!("/api/v1/resources/{token}")).await;
    assert_eq!(
        structured::<Resource>(&again["results"][0]).kind,
        "db",
        "{item}"
    );
    // Field for field, extra fields included.
    assert_eq!(item, &rest.body, "the tool answers what the route answers");

    // Unloading the provider takes its tools away; a rollback brings them back.
    let unloaded = host
        .post(
            "/admin/providers/postgres/unload",
            None,
            Vec::new(),
            &[("authorization", ADMIN_BEARER)],
        )
        .await;
    unloaded.expect::<Unloaded>(200);
    let without = session(&host, json!([["create_postgres", {"name": "gone"}]]));
    let tools = tool_names(&without);
    assert!(!tools.contains(&"create_postgres"), "{tools:?}");
    assert!(!tools.contains(&"create_vector"), "{tools:?}");
    assert!(tools.contains(&"create_webhook"), "{tools:?}");
    assert_eq!(without["results"][0]["is_error"], true);
    assert_eq!(
        structured::<ErrorBody>(&without["results"][0]).error,
        "unknown_tool"
    );

    let back = host
        .post(
            "/admin/providers/postgres/rollback",
            None,
            Vec::new(),
            &[("authorization", ADMIN_BEARER)],
        )
        .await;
    back.expect::<Swap>(200);
    let with = session(&host, json!([]));
    assert!(tool_names(&with).contains(&"create_postgres"));

    // The resource made before the unload is still deleted through the tool.
    let deleted = session(&host, json!([["delete_resource", {"token": token}]]));
    assert_eq!(deleted["results"][0]["is_error"], false, "{deleted}");
    structured::<ResourceDeleted>(&deleted["results"][0]);
}

#[tokio::test]
async fn the_transport_refuses_what_it_does_not_speak() {
    let host = TestHost::start(Default::default()).await;
    // No server-initiated stream: GET is 405 naming POST.
    let get = host.get("/mcp").await;
    assert_eq!(get.status, 405);
    assert_eq!(get.headers.get("allow").unwrap(), "POST");
    // A page of another site may not call it.
    let cross = host
        .http
        .post(format!("{}/mcp", host.url))
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    // Not JSON, and an unknown method, get JSON-RPC errors.
    let garbage = host
        .post("/mcp", Some("application/json"), b"{not json".to_vec(), &[])
        .await;
    assert_eq!(garbage.status, 400);
    let answer: JsonRpcAnswer = garbage.json();
    assert_eq!(answer.error.expect("an error").code, -32700);
    let unknown = host
        .post_json(
            "/mcp",
            json!({"jsonrpc": "2.0", "id": 7, "method": "resources/list"}),
        )
        .await;
    let answer: JsonRpcAnswer = unknown.json();
    assert_eq!(answer.id, 7);
    assert_eq!(answer.error.expect("an error").code, -32601);
    // A notification is accepted with no body.
    let note = host
        .post_json(
            "/mcp",
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
    assert_eq!(note.status, 202);
}

#[tokio::test]
async fn an_app_deploys_through_mcp_with_the_callers_token() {
    let host = TestHost::start(HostOptions {
        providers: vec![ProviderSpec::deploy()],
        ..HostOptions::default()
    })
    .await;
    let namespace = namespace_of(&host);
    let owner = session(&host, json!([["create_webhook", {"name": "owner"}]]));
    let jwt = structured::<Created>(&owner["results"][0]).upgrade_jwt;
    let tarball = base64::engine::general_purpose::STANDARD.encode(static_site("deployed by mcp"));
    let bearer = json!({"Authorization": format!("Bearer {jwt}")});

    // Without the caller's token the deploy route refuses, and the tool says so.
    let refused = session(
        &host,
        json!([["create_deploy", {"tarball_base64": tarball, "name": "mcp-app"}]]),
    );
    assert_eq!(
        structured::<ErrorBody>(&refused["results"][0]).error,
        "unauthorized"
    );

    let started = session_with(
        &host,
        json!([["create_deploy", {"tarball_base64": tarball, "name": "mcp-app"}]]),
        &bearer,
    );
    let accepted = &started["results"][0];
    assert_eq!(accepted["is_error"], false, "{accepted}");
    let id = structured::<DeploymentAnswer>(accepted).id.to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let item = loop {
        let polled = session(&host, json!([["get_deployment", {"id": id}]]));
        let item = structured::<DeploymentAnswer>(&polled["results"][0]).item;
        if matches!(
            item.status,
            DeploymentStatus::Healthy | DeploymentStatus::Failed
        ) {
            break item;
        }
        assert!(std::time::Instant::now() < deadline, "{item:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(item.status, DeploymentStatus::Healthy, "{item:?}");
    let url = item.url.as_deref().unwrap();
    let body = wait_for_body(&host, url, "deployed by mcp", Duration::from_secs(30)).await;
    assert!(body.contains("deployed by mcp"));
    remove_namespace(&namespace);
}

#[tokio::test]
async fn messages_are_bounded_in_size_and_count_against_the_callers_allowance() {
    let host = TestHost::start(HostOptions {
        extra: "rate_limit_per_minute = 6\n".into(),
        ..Default::default()
    })
    .await;
    let message = |id: u64, padding: usize| {
        json!({"jsonrpc": "2.0", "id": id, "method": "ping", "params": {"pad": "x".repeat(padding)}})
            .to_string()
            .into_bytes()
    };

    // A megabyte with an upgrade token is read (a deploy's tarball needs the room).
    let jwt = host.provision("db", "mcp-size").await.upgrade_jwt;
    let bearer = format!("Bearer {jwt}");
    let signed = host
        .post(
            "/mcp",
            Some("application/json"),
            message(2, 1 << 20),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(signed.expect::<JsonRpcAnswer>(200).id, 2);
    // From a caller showing no credential it is refused before it is read whole (on a
    // connection of its own: the host closes it with the body half sent).
    let big = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(format!("{}/mcp", host.url))
        .header("content-type", "application/json")
        .header("x-forwarded-for", host.fresh_client())
        .body(message(1, 1 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let big: JsonRpcAnswer = big.json().await.unwrap();
    assert_eq!(big.error.expect("an error").code, -32600);

    // Six messages a minute from one IPv6 /64, whichever addresses in it send them; tool
    // calls count once.
    let from = |n: u32| format!("2001:db8:7:1::{n:x}");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "create_postgres", "arguments": {"name": "limited"}}});
    for n in 0..6 {
        let body = if n == 0 {
            call.to_string().into_bytes()
        } else {
            message(10 + u64::from(n), 0)
        };
        let reply = host
            .post(
                "/mcp",
                Some("application/json"),
                body,
                &[("x-forwarded-for", &from(n))],
            )
            .await;
        assert_eq!(reply.status, 200, "message {n}: {}", reply.body);
        if n == 0 {
            let Some(RpcResult::Call(result)) = reply.json::<JsonRpcAnswer>().result else {
                panic!("not a tool result: {}", reply.body);
            };
            assert!(!result.is_error, "{}", reply.body);
        }
    }
    let limited = host
        .post(
            "/mcp",
            Some("application/json"),
            message(20, 0),
            &[("x-forwarded-for", &from(99))],
        )
        .await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.error().error, "rate_limited");
    // The next /64 has its own allowance.
    let other = host
        .post(
            "/mcp",
            Some("application/json"),
            message(21, 0),
            &[("x-forwarded-for", "2001:db8:7:2::1")],
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
}

/// The app and stack tools call the same functions as their REST routes: a stack is made,
/// read, updated and removed, and an app's env, lifetime and deletion go through tools.
#[tokio::test]
async fn stacks_and_deployments_are_managed_through_their_tools() {
    let host = TestHost::start(HostOptions::only(ProviderSpec::deploy())).await;
    let namespace = namespace_of(&host);
    let encode = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let site = encode(static_site("managed by mcp"));
    let jwt = instanode_tests::deploy::new_owner(&host).await;
    let bearer = json!({"Authorization": format!("Bearer {jwt}")});

    let manifest = "services:\n  web:\n    build: .\n    port: 8080\n    expose: true\n";
    // The app is the bearer's one anonymous app; the stack is made with no bearer at all.
    let made = session_with(
        &host,
        json!([
            ["create_deploy", {"tarball_base64": site, "name": "mcp-app"}],
            ["create_stack", {"name": "broken", "manifest": manifest, "service_tarballs": {"web": "%%"}}],
        ]),
        &bearer,
    );
    let stack_made = session(
        &host,
        json!([["create_stack", {"name": "mcp-stack", "manifest": manifest, "service_tarballs": {"web": site}}]]),
    );
    let tools = tool_names(&made);
    for expected in [
        "redeploy",
        "delete_deployment",
        "update_deploy_env",
        "set_deployment_ttl",
        "make_deployment_permanent",
        "create_stack",
        "get_stack",
        "delete_stack",
        "redeploy_stack",
        "update_stack_env",
        "set_stack_ttl",
        "make_stack_permanent",
        "get_credentials",
        "rotate_credentials",
        "list_webhook_requests",
        "cancel_deployment_deletion",
        "cancel_stack_deletion",
        "set_vault_key",
        "get_vault_key",
        "list_vault_keys",
        "delete_vault_key",
        "rotate_vault_key",
    ] {
        assert!(
            tools.contains(&expected),
            "{expected} missing from {tools:?}"
        );
    }
    let app = &made["results"][0];
    assert_eq!(app["is_error"], false, "{app}");
    let id = app["structured"]["id"].as_str().unwrap().to_string();
    let stack = &stack_made["results"][0];
    assert_eq!(stack["is_error"], false, "{stack}");
    let slug = stack["structured"]["slug"].as_str().unwrap().to_string();
    let stack_token = stack["structured"]["stack_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(made["results"][1]["structured"]["error"], "invalid_tarball");

    // The stack answers its owner's token only (the app's owner is a stranger to it),
    // through the tool as through REST.
    let owner = json!({"Authorization": format!("Bearer {stack_token}")});
    let calls = json!([
        ["get_stack", {"stack_id": slug}],
        ["update_stack_env", {"stack_id": slug, "env_vars": {"MODE": "mcp"}}],
        ["set_stack_ttl", {"stack_id": slug, "hours": 3}],
    ]);
    let as_owner = session_with(&host, calls.clone(), &owner);
    let read = &as_owner["results"][0];
    assert_eq!(read["is_error"], false, "{read}");
    assert_eq!(read["structured"]["slug"], slug.as_str());
    let updated = &as_owner["results"][1];
    assert_eq!(
        updated["structured"]["redeploying"],
        json!(["web"]),
        "{updated}"
    );
    assert_eq!(
        as_owner["results"][2]["structured"]["error"],
        "claim_required"
    );
    let as_stranger = session_with(&host, calls, &bearer);
    assert_eq!(
        as_stranger["results"][0]["structured"]["error"],
        "stack_not_found"
    );
    assert_eq!(
        as_stranger["results"][1]["structured"]["error"],
        "stack_not_found"
    );

    // The app: env merged, lifetime kept for claimed apps, then deleted.
    let managed = session(
        &host,
        json!([
            ["update_deploy_env", {"id": id, "env_vars": {"MODE": "mcp"}}],
            ["set_deployment_ttl", {"id": id, "hours": 2}],
            ["delete_deployment", {"id": id}],
            ["get_deployment", {"id": id}],
            ["delete_stack", {"stack_id": slug}],
            ["set_vault_key", {"env": "production", "key": "K", "value": "v"}],
        ]),
    );
    let results = &managed["results"];
    assert_eq!(
        results[0]["structured"]["redeploying"],
        json!(["app"]),
        "{}",
        results[0]
    );
    assert_eq!(results[1]["structured"]["error"], "claim_required");
    assert_eq!(results[2]["is_error"], false, "{}", results[2]);
    assert_eq!(results[3]["structured"]["error"], "resource_deleted");
    // No bearer: the stack is not deleted.
    assert_eq!(results[4]["structured"]["error"], "unauthorized");
    // The vault is a team's: no account, no vault.
    assert_eq!(results[5]["structured"]["error"], "unauthorized");
    let deleted = session_with(&host, json!([["delete_stack", {"stack_id": slug}]]), &owner);
    assert_eq!(deleted["results"][0]["is_error"], false, "{deleted}");
    remove_namespace(&namespace);
}
