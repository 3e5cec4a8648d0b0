//! `redis` (`[redis] url` + `password`): AUTH, PING, and `INFO memory` against `maxmemory`
//! (>= 90% warning). Redis holds sessions and caches: when it does not answer the stack is
//! degraded, a warning; a refused password is a misconfiguration, critical.

use async_trait::async_trait;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use vigia_core::config::RedisConfig;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_core::{Config, Error, Result};

use super::{result, skipped, unknown};

const NAME: &str = "redis";
/// The most a reply may hold (`INFO memory` is about 1 KiB).
const REPLY_MAX: usize = 64 * 1024;

pub(super) fn check(config: &Config) -> std::sync::Arc<dyn Check> {
    std::sync::Arc::new(Redis(config.redis.clone()))
}

struct Redis(Option<RedisConfig>);

#[async_trait]
impl Check for Redis {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let Some(config) = &self.0 else {
            return skipped(NAME, "[redis] is not configured");
        };
        let password = match config.password.as_ref() {
            None => None,
            Some(secret) => {
                let secret = secret.clone();
                match vigia_core::task::blocking("redis", move || secret.resolve("redis.password"))
                    .await
                {
                    Ok(p) => Some(p),
                    Err(e) => return unknown(NAME, &e),
                }
            }
        };
        // host:port, without a user or password the URL may hold, or a database number.
        let rest = config.url.trim_start_matches("redis://");
        let rest = rest.rsplit('@').next().unwrap_or(rest);
        let address = rest.split('/').next().unwrap_or(rest);
        let mut conn = match TcpStream::connect(address).await {
            Ok(stream) => BufReader::new(stream),
            Err(e) => {
                return result(
                    NAME,
                    CheckStatus::Warning,
                    format!("redis at {address} does not answer: {e}"),
                    json!({ "address": address }),
                );
            }
        };
        match talk(
            &mut conn,
            password.as_ref().map(vigia_core::config::Secret::expose),
        )
        .await
        {
            Ok(Reply::Refused(why)) => result(
                NAME,
                CheckStatus::Critical,
                format!("redis at {address} refused: {why} (check redis.password)"),
                json!({ "address": address }),
            ),
            Ok(Reply::Memory { used, max }) => {
                let percent = (max > 0).then(|| used as f64 * 100.0 / max as f64);
                let status = match percent {
                    Some(p) if p >= 90.0 => CheckStatus::Warning,
                    _ => CheckStatus::Ok,
                };
                result(
                    NAME,
                    status,
                    match percent {
                        Some(p) => format!("PONG; {p:.1}% of maxmemory used"),
                        None => format!("PONG; {used} bytes used, no maxmemory"),
                    },
                    json!({ "address": address, "used_memory": used, "maxmemory": max }),
                )
            }
            Err(e) => result(
                NAME,
                CheckStatus::Warning,
                format!("redis at {address}: {}", e.message()),
                json!({ "address": address }),
            ),
        }
    }
}

enum Reply {
    /// AUTH or PING answered with an error (a wrong or missing password).
    Refused(String),
    Memory {
        used: u64,
        max: u64,
    },
}

async fn talk(conn: &mut BufReader<TcpStream>, password: Option<&str>) -> Result<Reply> {
    if let Some(password) = password {
        send(conn, &["AUTH", password]).await?;
        if let Err(why) = simple(conn).await? {
            return Ok(Reply::Refused(why));
        }
    }
    send(conn, &["PING"]).await?;
    if let Err(why) = simple(conn).await? {
        return Ok(Reply::Refused(why));
    }
    send(conn, &["INFO", "memory"]).await?;
    let info = bulk(conn).await?;
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Reply::Memory {
        used: field("used_memory"),
        max: field("maxmemory"),
    })
}

/// A command as a RESP array of bulk strings (the password is never logged).
async fn send(conn: &mut BufReader<TcpStream>, parts: &[&str]) -> Result<()> {
    let mut frame = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        frame.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        frame.extend_from_slice(part.as_bytes());
        frame.extend_from_slice(b"\r\n");
    }
    conn.get_mut().write_all(&frame).await.map_err(io)
}

async fn line(conn: &mut BufReader<TcpStream>) -> Result<String> {
    let mut line = String::new();
    let n = (&mut *conn)
        .take(REPLY_MAX as u64)
        .read_line(&mut line)
        .await
        .map_err(io)?;
    if n == 0 {
        return Err(Error::new(
            vigia_core::ErrorKind::Network,
            "the connection closed",
        ));
    }
    Ok(line.trim_end().to_owned())
}

/// `+OK` / `+PONG`: Ok; `-ERR ...`: Err(the message).
async fn simple(conn: &mut BufReader<TcpStream>) -> Result<std::result::Result<(), String>> {
    let line = line(conn).await?;
    match line.as_bytes().first() {
        Some(b'+') => Ok(Ok(())),
        Some(b'-') => Ok(Err(line[1..].to_owned())),
        _ => Err(unexpected(&line)),
    }
}

/// `$N` then N bytes.
async fn bulk(conn: &mut BufReader<TcpStream>) -> Result<String> {
    let head = line(conn).await?;
    let len: usize = head
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= REPLY_MAX)
        .ok_or_else(|| unexpected(&head))?;
    let mut body = vec![0u8; len + 2];
    conn.read_exact(&mut body).await.map_err(io)?;
    body.truncate(len);
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn unexpected(line: &str) -> Error {
    Error::new(
        vigia_core::ErrorKind::Network,
        format!(
            "not a Redis reply: `{}`",
            line.chars().take(80).collect::<String>()
        ),
    )
}

fn io(e: std::io::Error) -> Error {
    Error::new(vigia_core::ErrorKind::Network, e.to_string()).with_source(e)
}
