//! Alert e-mails over SMTP (lettre): `smtp://` must upgrade with STARTTLS unless the server is
//! on loopback, `smtps://` is TLS from the first byte. The user is in the URL, the password
//! is the `smtp-password` secret; neither ever appears in a message.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use vigia_core::config::{AlertingConfig, Secret};
use vigia_core::ports::notifier::{Alert, Notifier};
use vigia_core::{Error, ErrorKind, Result};

use crate::http::is_loopback;

const KEY: &str = "alerting.smtp-url";

#[derive(Debug)]
pub struct Email {
    server: Server,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `[alerting] smtp-password`, resolved when a message is sent.
    password: Option<vigia_core::config::SecretRef>,
    /// `[alerting] ca-file`, parsed when the config is read.
    roots: Option<Certificate>,
    timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Server {
    implicit_tls: bool,
    host: String,
    port: u16,
    user: Option<String>,
}

impl Email {
    /// None when `email-to` is empty; validation already required email-from and smtp-url.
    pub fn from_config(a: &AlertingConfig, timeout: Duration) -> Result<Option<Self>> {
        if a.email_to.is_empty() {
            return Ok(None);
        }
        let url = a
            .smtp_url
            .as_deref()
            .ok_or_else(|| Error::config("alert e-mails need smtp-url").with_key(KEY))?;
        let from = a.email_from.as_deref().ok_or_else(|| {
            Error::config("alert e-mails need email-from").with_key("alerting.email-from")
        })?;
        let mailbox = |key: String, text: &str| {
            text.parse::<Mailbox>().map_err(|e| {
                Error::config(format!("`{text}` is not an e-mail address: {e}")).with_key(key)
            })
        };
        let to = a
            .email_to
            .iter()
            .enumerate()
            .map(|(i, t)| mailbox(format!("alerting.email-to[{i}]"), t))
            .collect::<Result<_>>()?;
        let roots = a
            .ca_file
            .as_ref()
            .map(|f| {
                let pem = std::fs::read(f).map_err(|e| Error::io("read", f, e))?;
                Certificate::from_pem(&pem).map_err(|e| {
                    Error::config(format!("{}: not PEM certificates: {e}", f.display()))
                        .with_key("alerting.ca-file")
                })
            })
            .transpose()?;
        Ok(Some(Self {
            server: parse_url(url)?,
            from: mailbox("alerting.email-from".into(), from)?,
            to,
            password: a.smtp_password.clone(),
            roots,
            timeout,
        }))
    }

    /// The password, resolved off the async threads (a `cmd:` secret runs a process).
    async fn password(&self) -> Result<Option<Secret>> {
        if self.server.user.is_none() {
            return Ok(None);
        }
        let Some(secret) = self.password.clone() else {
            return Err(
                Error::config("smtp-url names a user but smtp-password is not set")
                    .with_key("alerting.smtp-password"),
            );
        };
        vigia_core::task::blocking("smtp", move || secret.resolve("alerting.smtp-password"))
            .await
            .map(Some)
    }

    fn transport(&self, password: Option<&Secret>) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
        let s = &self.server;
        let parameters = self.tls_parameters()?;
        let tls = match tls_mode(s) {
            TlsMode::Implicit => Tls::Wrapper(parameters),
            TlsMode::StartTls => Tls::Required(parameters),
            TlsMode::IfOffered => Tls::Opportunistic(parameters),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .port(s.port)
            .tls(tls)
            .timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&s.user, password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }

    fn tls_parameters(&self) -> Result<TlsParameters> {
        let mut builder = TlsParameters::builder(self.server.host.clone());
        if let Some(roots) = &self.roots {
            builder = builder.add_root_certificate(roots.clone());
        }
        builder
            .build_rustls()
            .map_err(|e| Error::internal(format!("cannot set up TLS for SMTP: {e}")))
    }
}

#[async_trait]
impl Notifier for Email {
    fn channel(&self) -> &'static str {
        "email"
    }

    async fn send(&self, alert: &Alert) -> Result<()> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(alert.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .body(alert.body.clone())
            .map_err(|e| Error::internal(format!("cannot build the alert e-mail: {e}")))?;
        let server = format!("{}:{}", self.server.host, self.server.port);
        let password = self.password().await?;
        self.transport(password.as_ref())?
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::new(
                    ErrorKind::Network,
                    format!("the SMTP server {server} did not take the alert: {e}"),
                )
            })
    }
}

/// `smtp://[user@]host[:port]` (587) or `smtps://[user@]host[:port]` (465). A password in
/// the URL is refused, without repeating the URL: it belongs in smtp-password.
fn parse_url(text: &str) -> Result<Server> {
    let bad = |why: &str| Error::config(format!("smtp-url: {why}")).with_key(KEY);
    let url = reqwest::Url::parse(text).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if url.password().is_some() {
        return Err(bad(
            "holds a password; put it in smtp-password (a secret reference) instead",
        ));
    }
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => return Err(bad(&format!("scheme `{other}` is not smtp or smtps"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(bad("takes no path or query"));
    }
    let user = match url.username() {
        "" => None,
        user => Some(
            percent_encoding::percent_decode_str(user)
                .decode_utf8()
                .map_err(|_| bad("the user is not UTF-8"))?
                .into_owned(),
        ),
    };
    Ok(Server {
        implicit_tls,
        port: url.port().unwrap_or(if implicit_tls { 465 } else { 587 }),
        host,
        user,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://` to another machine: STARTTLS or nothing is sent (no downgrade).
    StartTls,
    /// `smtp://` to loopback: STARTTLS when the server offers it, plain text otherwise.
    IfOffered,
}

fn tls_mode(server: &Server) -> TlsMode {
    if server.implicit_tls {
        TlsMode::Implicit
    } else if is_loopback(&server.host) {
        TlsMode::IfOffered
    } else {
        TlsMode::StartTls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_name_the_server_and_the_user_never_a_password() {
        assert_eq!(
            parse_url("smtp://alertas%40erp@mail.example.cr").unwrap(),
            Server {
                implicit_tls: false,
                host: "mail.example.cr".into(),
                port: 587,
                user: Some("alertas@erp".into()),
            }
        );
        let tls = parse_url("smtps://[::1]:2465").unwrap();
        assert!(tls.implicit_tls && tls.host == "::1" && tls.port == 2465 && tls.user.is_none());
        let e = parse_url("smtp://u:hunter2@mail.example.cr").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("smtp-password"), "{e}");
        assert!(parse_url("http://mail.example.cr").is_err());
        assert!(parse_url("smtp://mail.example.cr/x").is_err());
    }

    #[test]
    fn only_loopback_may_skip_starttls() {
        let mode = |url: &str| tls_mode(&parse_url(url).unwrap());
        assert_eq!(mode("smtp://mail.example.cr"), TlsMode::StartTls);
        assert_eq!(mode("smtp://10.0.0.1:25"), TlsMode::StartTls);
        assert_eq!(mode("smtp://127.0.0.1:2525"), TlsMode::IfOffered);
        assert_eq!(mode("smtp://[::1]"), TlsMode::IfOffered);
        assert_eq!(mode("smtp://LOCALHOST"), TlsMode::IfOffered);
        assert_eq!(mode("smtps://127.0.0.1"), TlsMode::Implicit);
        assert_eq!(mode("smtps://mail.example.cr"), TlsMode::Implicit);
    }
}
