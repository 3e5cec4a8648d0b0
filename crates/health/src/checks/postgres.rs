//! `postgres`: the server's version, connections, long and idle transactions, and how close
//! it is to transaction id wraparound.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use vigia_core::ports::check::{Check, CheckResult, CheckStatus};
use vigia_pg::db_error;

use super::{Pg, above, result, unknown};

const NAME: &str = "postgres";

pub(super) struct Postgres(pub Arc<Pg>);

/// What one query reads from the server.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Server {
    version_num: i32,
    max_connections: i32,
    connections: i64,
    longest_transaction_s: f64,
    longest_idle_in_transaction_s: f64,
    oldest_xid_age: i64,
}

#[async_trait]
impl Check for Postgres {
    fn name(&self) -> &str {
        NAME
    }

    async fn run(&self) -> CheckResult {
        let (_slot, client) = match self.0.session(NAME, CheckStatus::Critical).await {
            Ok(session) => session,
            Err(failed) => return failed,
        };
        let row = client
            .query_one(
                "SELECT current_setting('server_version_num')::int4, \
                 current_setting('max_connections')::int4, \
                 (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
                 coalesce((SELECT extract(epoch FROM max(now() - xact_start)) \
                    FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
                    AND backend_type = 'client backend'), 0)::float8, \
                 coalesce((SELECT extract(epoch FROM max(now() - state_change)) \
                    FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'), 0)::float8, \
                 (SELECT max(age(datfrozenxid)) FROM pg_database)::int8",
                &[],
            )
            .await;
        match row {
            Ok(row) => judge(&Server {
                version_num: row.get(0),
                max_connections: row.get(1),
                connections: row.get(2),
                longest_transaction_s: row.get(3),
                longest_idle_in_transaction_s: row.get(4),
                oldest_xid_age: row.get(5),
            }),
            Err(e) => unknown(NAME, &db_error("cannot read the server's state", &e)),
        }
    }
}

/// Version < 13 critical, 13 warning; connections >= 80 / 95% of max_connections; longest
/// transaction > 5 min / 1 h; idle in transaction > 10 min warning; xid age > 1e9 / 1.5e9.
fn judge(s: &Server) -> CheckResult {
    let mut findings: Vec<(CheckStatus, String)> = Vec::new();
    let major = s.version_num / 10_000;
    findings.push((
        match major {
            ..13 => CheckStatus::Critical,
            13 => CheckStatus::Warning,
            _ => CheckStatus::Ok,
        },
        format!("PostgreSQL {major}"),
    ));
    let used = s.connections as f64 * 100.0 / f64::from(s.max_connections.max(1));
    findings.push((
        above(used, 80.0, 95.0),
        format!("{} of {} connections", s.connections, s.max_connections),
    ));
    findings.push((
        above(s.longest_transaction_s, 300.0, 3600.0),
        format!("longest transaction {:.0} s", s.longest_transaction_s),
    ));
    findings.push((
        above(s.longest_idle_in_transaction_s, 600.0, f64::INFINITY),
        format!(
            "longest idle in transaction {:.0} s",
            s.longest_idle_in_transaction_s
        ),
    ));
    findings.push((
        above(s.oldest_xid_age, 1_000_000_000, 1_500_000_000),
        format!("oldest transaction id age {}", s.oldest_xid_age),
    ));
    let status = findings
        .iter()
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(CheckStatus::Ok);
    let summary: Vec<&str> = findings
        .iter()
        .filter(|(st, _)| *st == status || status == CheckStatus::Ok)
        .map(|(_, text)| text.as_str())
        .collect();
    result(
        NAME,
        status,
        summary.join(", "),
        json!({
            "server_version_num": s.version_num,
            "connections": s.connections,
            "max_connections": s.max_connections,
            "longest_transaction_seconds": s.longest_transaction_s,
            "longest_idle_in_transaction_seconds": s.longest_idle_in_transaction_s,
            "oldest_xid_age": s.oldest_xid_age,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Server {
        Server {
            version_num: 150_018,
            max_connections: 100,
            connections: 10,
            longest_transaction_s: 1.0,
            longest_idle_in_transaction_s: 0.0,
            oldest_xid_age: 1000,
        }
    }

    #[test]
    fn each_measure_has_its_thresholds() {
        assert_eq!(judge(&healthy()).status, CheckStatus::Ok);
        let cases = [
            (
                Server {
                    version_num: 130_011,
                    ..healthy()
                },
                CheckStatus::Warning,
            ),
            (
                Server {
                    version_num: 120_000,
                    ..healthy()
                },
                CheckStatus::Critical,
            ),
            (
                Server {
                    connections: 80,
                    ..healthy()
                },
                CheckStatus::Warning,
            ),
            (
                Server {
                    connections: 96,
                    ..healthy()
                },
                CheckStatus::Critical,
            ),
            (
                Server {
                    longest_transaction_s: 400.0,
                    ..healthy()
                },
                CheckStatus::Warning,
            ),
            (
                Server {
                    longest_transaction_s: 4000.0,
                    ..healthy()
                },
                CheckStatus::Critical,
            ),
            (
                Server {
                    longest_idle_in_transaction_s: 700.0,
                    ..healthy()
                },
                CheckStatus::Warning,
            ),
            (
                Server {
                    oldest_xid_age: 1_200_000_000,
                    ..healthy()
                },
                CheckStatus::Warning,
            ),
            (
                Server {
                    oldest_xid_age: 1_600_000_000,
                    ..healthy()
                },
                CheckStatus::Critical,
            ),
        ];
        for (server, expected) in cases {
            let judged = judge(&server);
            assert_eq!(judged.status, expected, "{server:?}: {}", judged.summary);
        }
    }
}
