//! The command-line client (`instanode <command>`) against a real host: creating a
//! database whose URL works, a deploy that fails with its autopsy and one that goes live,
//! resources, and the device sign-in that keeps an API key.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use instanode::api::schema::{CliApproval, Created, ErrorBody, ResourceList};
use instanode_tests::deploy::namespace_of;
use instanode_tests::deploy::remove_namespace;
use instanode_tests::{HostOptions, TestHost, env};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The CLI with a home of its own (no saved key unless `home` has one).
fn cli(host: &TestHost, home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env("INSTANODE_BIN"));
    command
        .args(args)
        .env("INSTANODE_URL", &host.url)
        .env_remove("INSTANODE_TOKEN")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .kill_on_drop(true);
    command
}

async fn run(mut command: Command) -> Run {
    let out = command.output().await.expect("the CLI runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What `--json` printed: the host's answer, as it is.
fn json_of<T: DeserializeOwned>(run: &Run) -> T {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
}

fn write_app(dir: &Path, dockerfile: &str, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (name, contents) in files {
        std::fs::write(dir.join(name), contents).unwrap();
    }
}

#[tokio::test]
async fn the_cli_creates_resources_and_deploys_with_progress() {
    let host = TestHost::start(HostOptions::databases_and_deploy()).await;
    let namespace = namespace_of(&host);
    let home = host.dir.join("cli-home");

    // A database whose printed URL works.
    let created = run(cli(
        &host,
        &home,
        &["db", "new", "--name", "cli-db", "--json"],
    ))
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let body: Created = json_of(&created);
    let url = body.connection_url.as_str();
    let mut conn = PgConnection::connect(url).await.expect("the URL connects");
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    // Readable output names the URL too.
    let readable = run(cli(&host, &home, &["webhook", "new", "--name", "owner"])).await;
    assert_eq!(readable.code, 0, "{}", readable.stderr);
    assert!(
        readable.stdout.contains("webhook `owner` is ready"),
        "{}",
        readable.stdout
    );
    assert!(
        readable.stdout.contains("receive_url"),
        "{}",
        readable.stdout
    );

    // A refusal exits 1 and says what to do.
    let refused = run(cli(&host, &home, &["db", "new", "--name", "bad name!"])).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("error: invalid_name (HTTP 400)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("what to do: "),
        "{}",
        refused.stderr
    );
    let usage = run(cli(&host, &home, &["db", "new"])).await;
    assert_eq!(usage.code, 2, "{}", usage.stderr);

    // The token of any resource deploys.
    let token = body.upgrade_jwt.as_str();
    let app = host.dir.join("cli-app");

    // A build that fails: exit 1 with the autopsy, the failing output included.
    write_app(
        &app,
        "FROM instanode/busybox:1\nRUN echo fetching-deps && echo missing-module-cli >&2 && exit 4\n",
        &[],
    );
    let mut command = cli(
        &host,
        &home,
        &["deploy", app.to_str().unwrap(), "--name", "cli-app"],
    );
    command.env("INSTANODE_TOKEN", token);
    let failed = run(command).await;
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    for expected in [
        "==> packed",
        "==> uploaded: deployment",
        "  | ",
        "deployment failed: BuildFailed",
        "reason     BuildFailed",
        "missing-module-cli",
        "hint ",
    ] {
        assert!(
            failed.stderr.contains(expected),
            "{expected}:\n{}",
            failed.stderr
        );
    }

    // Fixed and redeployed: progress, then the live URL, which answers.
    write_app(
        &app,
        "FROM instanode/busybox:1\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
        &[("index.html", "made by the cli")],
    );
    let mut command = cli(
        &host,
        &home,
        &[
            "deploy",
            app.to_str().unwrap(),
            "--name",
            "cli-app",
            "--redeploy",
            "--var",
            "GREETING=hi",
        ],
    );
    command.env("INSTANODE_TOKEN", token);
    let live = run(command).await;
    assert_eq!(live.code, 0, "{}\n{}", live.stdout, live.stderr);
    assert!(
        live.stderr.contains("==> status: healthy"),
        "{}",
        live.stderr
    );
    let app_url = live
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("live at "))
        .unwrap_or_else(|| panic!("no URL: {}", live.stdout))
        .trim()
        .to_string();
    let answer = instanode_tests::deploy::wait_for_body(
        &host,
        &app_url,
        "made by the cli",
        Duration::from_secs(30),
    )
    .await;
    assert!(answer.contains("made by the cli"));

    // A folder without a Dockerfile is refused before anything is sent.
    let empty = host.dir.join("empty-app");
    std::fs::create_dir_all(&empty).unwrap();
    let missing = run(cli(&host, &home, &["deploy", empty.to_str().unwrap()])).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("missing_dockerfile"),
        "{}",
        missing.stderr
    );

    remove_namespace(&namespace);
}

#[tokio::test]
async fn login_keeps_an_api_key_that_later_commands_use() {
    let host = TestHost::start(HostOptions::default()).await;
    let home = host.dir.join("login-home");

    // Without a key, listing is refused with the envelope's advice.
    let anonymous = run(cli(&host, &home, &["resources"])).await;
    assert_eq!(anonymous.code, 1, "{}", anonymous.stdout);
    assert!(
        anonymous.stderr.contains("what to do: "),
        "{}",
        anonymous.stderr
    );

    let mut login = cli(&host, &home, &["login"]);
    login.stderr(Stdio::piped()).stdout(Stdio::piped());
    let mut child = login.spawn().expect("login starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let approve_page = loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("login names a page");
        if let Some((_, url)) = line.split_once("approve: ") {
            break url.trim().to_string();
        }
    };

    // The person signs in by email and approves the page the CLI named.
    let account = host.new_account("cli").await;
    let email = account.email.clone();
    let path = approve_page.strip_prefix(&host.url).unwrap();
    let approved = host.post(path, None, vec![], &[account.auth()]).await;
    approved.expect::<CliApproval>(200);

    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("login finishes after the approval")
        .unwrap();
    assert!(status.success());
    // The CLI's own file, not an answer of the API.
    let saved: Value = serde_json::from_slice(
        &std::fs::read(home.join(".config/instanode/credentials.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["email"], email.as_str());
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(home.join(".config/instanode/credentials.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The kept key acts for the team: what it creates, `resources` lists.
    let created = run(cli(
        &host,
        &home,
        &["db", "new", "--name", "team-db", "--json"],
    ))
    .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let token = json_of::<Created>(&created).token.to_string();
    let listed = run(cli(&host, &home, &["resources", "--json"])).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let items = json_of::<ResourceList>(&listed).items;
    assert!(
        items.iter().any(|i| i.token.to_string() == token),
        "{items:?}"
    );
    let table = run(cli(&host, &home, &["resources"])).await;
    assert!(table.stdout.contains(&token), "{}", table.stdout);
    assert!(table.stdout.contains("team-db"), "{}", table.stdout);

    // And deletes it.
    let deleted = run(cli(&host, &home, &["delete", &token])).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let gone = run(cli(&host, &home, &["resource", &token, "--json"])).await;
    assert_eq!(gone.code, 1);
    assert_eq!(
        json_of::<ErrorBody>(&gone).error,
        "resource_deleted",
        "{}",
        gone.stdout
    );
}
