//! Getting certificates from an ACME CA (RFC 8555) through `instant-acme`.
//!
//! One account per directory, made on first use and sealed in the metadata database so every
//! replica uses the same. Names are proven by DNS-01 (the operator's hook publishes the TXT
//! record) or HTTP-01 (the answer is stored, so whichever replica the CA reaches gives it).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::Utc;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tokio::sync::OnceCell;

use crate::config::AcmeConfig;
use crate::store::{Sealer, Store};

/// What sealed account credentials are bound to.
const ACCOUNT_AAD: &[u8] = b"acme-account";
/// How long an HTTP-01 answer is kept.
const ANSWER_KEPT: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// How long the CA gets to validate and to issue.
const VALIDATION: Duration = Duration::from_secs(90);
/// How long the operator's DNS hook may run.
const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// How a name is proven to the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Dns01,
    Http01,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns01 => "dns-01",
            Self::Http01 => "http-01",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dns-01" => Some(Self::Dns01),
            "http-01" => Some(Self::Http01),
            _ => None,
        }
    }
}

/// A certificate chain and its private key, both PEM.
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// Why issuing failed, as the CA (or the step before it) said.
#[derive(Debug)]
pub struct IssueError {
    pub message: String,
    /// The CA refused because of its rate limits: wait longer before the next try.
    pub rate_limited: bool,
}

impl IssueError {
    fn from_anyhow(error: anyhow::Error) -> Self {
        let rate_limited = error.chain().any(|cause| {
            cause
                .downcast_ref::<instant_acme::Error>()
                .is_some_and(|e| matches!(e, instant_acme::Error::Api(p) if p.r#type.as_deref().is_some_and(|t| t.ends_with(":rateLimited"))))
        });
        Self {
            message: format!("{error:#}"),
            rate_limited,
        }
    }
}

pub struct Acme {
    directory: String,
    contact: Vec<String>,
    ca_certificate: Option<PathBuf>,
    dns_hook: Vec<String>,
    account: OnceCell<Account>,
}

impl Acme {
    pub fn new(config: &AcmeConfig) -> Self {
        Self {
            directory: config.directory.clone(),
            contact: config.contact.clone(),
            ca_certificate: config.ca_certificate.clone(),
            dns_hook: config.dns_hook.clone(),
            account: OnceCell::new(),
        }
    }

    /// Whether DNS-01 answers can be published (and so wildcards issued).
    pub fn has_dns_hook(&self) -> bool {
        !self.dns_hook.is_empty()
    }

    /// Gets a certificate for `name` (`*.example.com` for a wildcard, DNS-01 only).
    pub async fn issue(
        &self,
        name: &str,
        proof: Proof,
        store: &Store,
        sealer: &Sealer,
    ) -> Result<Issued, IssueError> {
        self.try_issue(name, proof, store, sealer)
            .await
            .map_err(IssueError::from_anyhow)
    }

    async fn try_issue(
        &self,
        name: &str,
        proof: Proof,
        store: &Store,
        sealer: &Sealer,
    ) -> anyhow::Result<Issued> {
        if proof == Proof::Dns01 && self.dns_hook.is_empty() {
            bail!("DNS-01 needs [tls.acme] dns_hook");
        }
        let account = self.account(store, sealer).await?;
        let identifiers = [Identifier::Dns(name.to_string())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .context("the CA refused the order")?;
        let mut answers = Vec::new();
        let proved = self.answer(&mut order, proof, store, &mut answers).await;
        let ready = match proved {
            Ok(()) => order
                .poll_ready(&RetryPolicy::new().timeout(VALIDATION))
                .await
                .context("waiting for the CA to validate"),
            Err(e) => Err(e),
        };
        for answer in answers {
            answer.withdraw(self, store).await;
        }
        let status = ready?;
        if status != OrderStatus::Ready {
            bail!(
                "the CA did not validate {name}: {}",
                validation_errors(&mut order).await
            );
        }
        let key_pem = order.finalize().await.context("finalizing the order")?;
        let chain_pem = order
            .poll_certificate(&RetryPolicy::new().timeout(VALIDATION))
            .await
            .context("waiting for the certificate")?;
        Ok(Issued { chain_pem, key_pem })
    }

    /// Publishes an answer for every pending authorization of `order` and tells the CA.
    async fn answer(
        &self,
        order: &mut instant_acme::Order,
        proof: Proof,
        store: &Store,
        answers: &mut Vec<Answer>,
    ) -> anyhow::Result<()> {
        let kind = match proof {
            Proof::Dns01 => ChallengeType::Dns01,
            Proof::Http01 => ChallengeType::Http01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.context("reading an authorization")?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("the CA's authorization is {other:?}"),
            }
            let base = match &authorization.identifier().identifier {
                Identifier::Dns(name) => name.clone(),
                other => bail!("the CA asked about {other:?}"),
            };
            let mut challenge = authorization
                .challenge(kind.clone())
                .with_context(|| format!("the CA offers no {} challenge", proof.as_str()))?;
            let key_authorization = challenge.key_authorization();
            let answer = match proof {
                Proof::Dns01 => {
                    let record = format!("_acme-challenge.{base}.");
                    let value = key_authorization.dns_value();
                    self.run_hook("set", &record, &value).await?;
                    Answer::Dns { record, value }
                }
                Proof::Http01 => {
                    let token = challenge.token.clone();
                    store
                        .put_acme_challenge(
                            &token,
                            key_authorization.as_str(),
                            Utc::now() + ANSWER_KEPT,
                        )
                        .await?;
                    Answer::Http { token }
                }
            };
            answers.push(answer);
            challenge
                .set_ready()
                .await
                .context("telling the CA to validate")?;
        }
        Ok(())
    }

    /// The account for this directory: the stored one, else a new one (stored for every
    /// replica; if another replica stored one first, that one is used).
    async fn account(&self, store: &Store, sealer: &Sealer) -> anyhow::Result<&Account> {
        self.account
            .get_or_try_init(|| async {
                if let Some(sealed) = store.acme_account(&self.directory).await? {
                    return self.restore(&sealed, sealer).await;
                }
                let contact: Vec<&str> = self.contact.iter().map(String::as_str).collect();
                let (account, credentials) = self
                    .builder()?
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.directory.clone(),
                        None,
                    )
                    .await
                    .with_context(|| format!("cannot make an account at {}", self.directory))?;
                let sealed = sealer.seal(&serde_json::to_vec(&credentials)?, ACCOUNT_AAD)?;
                let kept = store.keep_acme_account(&self.directory, &sealed).await?;
                if kept == sealed {
                    Ok(account)
                } else {
                    self.restore(&kept, sealer).await
                }
            })
            .await
    }

    async fn restore(&self, sealed: &[u8], sealer: &Sealer) -> anyhow::Result<Account> {
        let credentials: AccountCredentials =
            serde_json::from_slice(&sealer.open(sealed, ACCOUNT_AAD)?)?;
        self.builder()?
            .from_credentials(credentials)
            .await
            .with_context(|| format!("cannot use the stored account at {}", self.directory))
    }

    fn builder(&self) -> anyhow::Result<instant_acme::AccountBuilder> {
        Ok(match &self.ca_certificate {
            Some(root) => Account::builder_with_root(root)
                .with_context(|| format!("cannot trust {}", root.display()))?,
            None => Account::builder()?,
        })
    }

    /// Runs the operator's DNS hook: `<hook...> <action> <record> <value>`.
    async fn run_hook(&self, action: &str, record: &str, value: &str) -> anyhow::Result<()> {
        let (program, args) = self.dns_hook.split_first().context("no DNS hook")?;
        let run = tokio::process::Command::new(program)
            .args(args)
            .args([action, record, value])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(HOOK_TIMEOUT, run)
            .await
            .with_context(|| format!("the DNS hook did not finish within {HOOK_TIMEOUT:?}"))?
            .with_context(|| format!("cannot run the DNS hook {program}"))?;
        if !output.status.success() {
            bail!(
                "the DNS hook failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// An answer published for the CA, withdrawn once the order is validated or failed.
enum Answer {
    Dns { record: String, value: String },
    Http { token: String },
}

impl Answer {
    async fn withdraw(self, acme: &Acme, store: &Store) {
        let result = match &self {
            Self::Dns { record, value } => acme.run_hook("clear", record, value).await,
            Self::Http { token } => store.drop_acme_challenge(token).await.map_err(Into::into),
        };
        if let Err(e) = result {
            tracing::warn!(error = %format!("{e:#}"), "cannot withdraw an ACME answer");
        }
    }
}

/// What the CA said about each failed challenge of `order`.
async fn validation_errors(order: &mut instant_acme::Order) -> String {
    let mut errors = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let Ok(authorization) = authorization else {
            continue;
        };
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                errors.push(problem.to_string());
            }
        }
    }
    if errors.is_empty() {
        "no reason given".into()
    } else {
        errors.join("; ")
    }
}
