//! Outgoing email: one-time links for claims and sign-ins, through the configured relay.

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::EmailConfig;

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(config: &EmailConfig) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.expose())
            .context("email.smtp_url is not an smtp:// or smtps:// URL")?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = config
            .from
            .parse()
            .with_context(|| format!("email.from {:?} is not an address", config.from))?;
        Ok(Self { transport, from })
    }

    /// Sends a plain-text message to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("recipient")?)
            .subject(subject)
            .body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}
