//! What Odoo has not done yet: scheduled actions past their time (a dead cron worker leaves
//! invoices stuck) and e-mails that failed. None when the table is missing.

use tokio_postgres::GenericClient;
use vigia_core::Result;
use vigia_pg::{db_error, has_table};

/// Active scheduled actions late by more than an hour and by more than a day, with the names
/// of the latest ones (at most three). `nextcall` is UTC without a time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateCrons {
    pub over_an_hour: i64,
    pub over_a_day: i64,
    pub latest: Vec<String>,
}

pub async fn late_crons(client: &impl GenericClient) -> Result<Option<LateCrons>> {
    if !has_table(client, "public.ir_cron").await? {
        return Ok(None);
    }
    let now = "(now() AT TIME ZONE 'UTC')";
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE nextcall < {now} - interval '1 hour'), \
                 count(*) FILTER (WHERE nextcall < {now} - interval '1 day') \
                 FROM public.ir_cron WHERE active"
            ),
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the scheduled actions", &e))?;
    let latest = client
        .query(
            &format!(
                "SELECT coalesce(cron_name::text, id::text) FROM public.ir_cron \
                 WHERE active AND nextcall < {now} - interval '1 hour' \
                 ORDER BY nextcall LIMIT 3"
            ),
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the scheduled actions", &e))?;
    Ok(Some(LateCrons {
        over_an_hour: row.get(0),
        over_a_day: row.get(1),
        latest: latest.iter().map(|r| r.get(0)).collect(),
    }))
}

/// E-mails in state `exception` (Odoo gave up sending them).
pub async fn failed_mails(client: &impl GenericClient) -> Result<Option<i64>> {
    if !has_table(client, "public.mail_mail").await? {
        return Ok(None);
    }
    Ok(Some(
        client
            .query_one(
                "SELECT count(*) FROM public.mail_mail WHERE state = 'exception'",
                &[],
            )
            .await
            .map_err(|e| db_error("cannot count the failed e-mails", &e))?
            .get(0),
    ))
}
