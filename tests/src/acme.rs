//! A private ACME CA for a test: Debian's `pebble`, with `pebble-challtestsrv` as the DNS
//! server it asks (every name resolves to 127.0.0.1; TXT records are set through its
//! management API). Both stop when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{env, free_port};

pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// The CA that signed pebble's own HTTPS certificate (for the host's ACME client).
    pub listener_ca: PathBuf,
    /// The DNS server pebble asks, which also answers the host's TXT lookups.
    pub dns: String,
    /// The root pebble issues certificates under (PEM), fetched once it is up.
    pub issuing_root: String,
    /// Where `issuing_root` is written, for `curl --cacert`.
    pub issuing_root_path: PathBuf,
    /// A script the host runs as its DNS hook: it sets and clears TXT records.
    pub dns_hook: PathBuf,
    management: String,
    dir: PathBuf,
    children: Vec<Child>,
}

/// How pebble is set up for a test.
pub struct PebbleOptions {
    /// The port pebble dials for HTTP-01 (the host's HTTP port).
    pub http_port: u16,
    /// How long certificates last, in seconds.
    pub validity_secs: u64,
    /// Names pebble refuses to issue for.
    pub blocked: Vec<String>,
}

impl Pebble {
    pub async fn start(options: PebbleOptions) -> Self {
        let dir = PathBuf::from(env("INSTANODE_TEST_DATA_DIR"))
            .join("pebble")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).expect("pebble dir");
        let [
            acme_port,
            acme_management,
            dns_port,
            dns_management,
            tls_port,
        ] = [(); 5].map(|()| free_port().expect("a free port"));
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{acme_management}"),
            "certificate": env("INSTANODE_TEST_ACME_CERT"),
            "privateKey": env("INSTANODE_TEST_ACME_KEY"),
            "httpPort": options.http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": options.blocked,
            "certificateValidityPeriod": options.validity_secs,
        }});
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("pebble config");
        let log = |name: &str| std::fs::File::create(dir.join(name)).expect("a log file");
        let dns = format!("127.0.0.1:{dns_port}");
        let management = format!("http://127.0.0.1:{dns_management}");
        let challenge_server = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args([
                "-dns01",
                &dns,
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ])
            .args(["-management", &format!("127.0.0.1:{dns_management}")])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv starts");
        let pebble = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns])
            // No random waits, no rejected nonces: the tests are about the host, not retries.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log("pebble.log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble starts");
        let dns_hook = dir.join("dns-hook");
        std::fs::write(
            &dns_hook,
            format!(
                "#!/bin/sh\n# <set|clear> <name> <value>: what the host's [tls.acme] dns_hook runs.\n\
                 case $1 in\n  set) curl -sSf -d \"{{\\\"host\\\":\\\"$2\\\",\\\"value\\\":\\\"$3\\\"}}\" {management}/set-txt ;;\n  \
                 clear) curl -sSf -d \"{{\\\"host\\\":\\\"$2\\\"}}\" {management}/clear-txt ;;\n  *) exit 2 ;;\nesac\n"
            ),
        )
        .expect("the DNS hook");
        std::fs::set_permissions(
            &dns_hook,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("the DNS hook is executable");

        let listener_ca = PathBuf::from(env("INSTANODE_TEST_ACME_CA"));
        let trusting = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&listener_ca).unwrap()).unwrap(),
            )
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let began = Instant::now();
        let issuing_root = loop {
            let root = trusting
                .get(format!("https://127.0.0.1:{acme_management}/roots/0"))
                .send()
                .await;
            match root {
                Ok(response) if response.status().is_success() => {
                    break response.text().await.expect("the root");
                }
                _ => {}
            }
            assert!(
                began.elapsed() < Duration::from_secs(15),
                "pebble did not start: {}",
                std::fs::read_to_string(dir.join("pebble.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let issuing_root_path = dir.join("issuing-root.pem");
        std::fs::write(&issuing_root_path, &issuing_root).unwrap();
        Self {
            directory: format!("https://127.0.0.1:{acme_port}/dir"),
            listener_ca,
            dns,
            issuing_root,
            issuing_root_path,
            dns_hook,
            management,
            dir,
            children: vec![challenge_server, pebble],
        }
    }

    /// Publishes a TXT record, as a domain's owner would at their DNS provider.
    pub async fn set_txt(&self, name: &str, value: &str) {
        let response = reqwest::Client::new()
            .post(format!("{}/set-txt", self.management))
            .json(&serde_json::json!({"host": format!("{}.", name.trim_end_matches('.')), "value": value}))
            .send()
            .await
            .expect("the DNS test server answers");
        assert!(
            response.status().is_success(),
            "set-txt: {}",
            response.status()
        );
    }

    /// The `[tls]` section of a host config that gets certificates here: HTTPS on
    /// `https_port`, apps under `apps_domain`, and the DNS hook when `wildcard`.
    pub fn host_config(&self, https_port: u16, apps_domain: &str, wildcard: bool) -> String {
        let hook = if wildcard {
            format!("dns_hook = [{:?}]\n", self.dns_hook.display().to_string())
        } else {
            String::new()
        };
        format!(
            "[apps]\nurl = \"https://*.{apps_domain}:{https_port}\"\n\n\
             [tls]\nlisten = \"127.0.0.1:{https_port}\"\ndns_resolver = {:?}\n\n\
             [tls.acme]\ndirectory = {:?}\nca_certificate = {:?}\ncontact = [\"mailto:ops@example.com\"]\n{hook}\n",
            self.dns,
            self.directory,
            self.listener_ca.display().to_string(),
        )
    }

    /// What pebble logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
