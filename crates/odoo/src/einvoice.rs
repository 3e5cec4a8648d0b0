//! The e-invoicing module's documents (`l10n_cr_einvoice_document`, DOMAIN.md section 3): what
//! a restore must not make Odoo forget while Hacienda has their claves. `create_date` is UTC
//! without a time zone; the consecutive is the clave's 20 digits after 506 + date + issuer id.

use tokio_postgres::GenericClient;
use vigia_core::Result;
use vigia_pg::{db_error, has_table, quote_ident};

const TABLE: &str = "public.l10n_cr_einvoice_document";

/// The documents created after `since` (UTC, as PostgreSQL reads a timestamp), per document
/// type, for a person. None when there are none (or the module is not installed).
pub async fn created_after(client: &impl GenericClient, since: &str) -> Result<Option<String>> {
    if !has_table(client, TABLE).await? {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT document_type, count(*), count(*) FILTER (WHERE state = 'accepted'), \
             coalesce(max(substring(clave FROM 22 FOR 20)), '') \
             FROM public.l10n_cr_einvoice_document WHERE create_date > $1::text::timestamp \
             GROUP BY 1 ORDER BY 1",
            &[&since],
        )
        .await
        .map_err(|e| db_error("cannot count the newer e-invoice documents", &e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let (kind, all, accepted, last): (Option<String>, i64, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            format!(
                "{}: {all} documents ({accepted} accepted by Hacienda), last consecutive {last}",
                kind.unwrap_or_else(|| "?".into())
            )
        })
        .collect();
    Ok(Some(lines.join("; ")))
}

/// The newest document's `create_date`, as text; `-infinity` when there is none. Dates after
/// now are left out: they say nothing of when a copy was made, and a copy claiming `infinity`
/// would otherwise pass the restore's guard.
pub async fn newest(client: &impl GenericClient) -> Result<String> {
    if !has_table(client, TABLE).await? {
        return Ok("-infinity".into());
    }
    Ok(client
        .query_one(
            "SELECT coalesce(max(create_date) FILTER (WHERE create_date <= \
             now() AT TIME ZONE 'UTC'), '-infinity')::text FROM public.l10n_cr_einvoice_document",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the newest e-invoice document", &e))?
        .get(0))
}

/// The clave of `company`'s newest document Hacienda has received, for a status query that
/// submits nothing; None when there is none (or the module is not installed).
pub async fn newest_submitted_clave(
    client: &impl GenericClient,
    company: i32,
) -> Result<Option<String>> {
    if !has_table(client, TABLE).await? {
        return Ok(None);
    }
    // An older module has no company_id: any company's clave is as good a probe.
    let per_company: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = \
             'public' AND table_name = 'l10n_cr_einvoice_document' AND column_name = 'company_id')",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read the e-invoice documents' columns", &e))?
        .get(0);
    let filter = if per_company {
        "company_id = $1"
    } else {
        "$1::int IS NOT NULL"
    };
    Ok(client
        .query_opt(
            &format!(
                "SELECT clave::text FROM public.l10n_cr_einvoice_document \
                 WHERE {filter} AND clave IS NOT NULL \
                   AND state IN ('submitted', 'accepted', 'rejected') \
                 ORDER BY create_date DESC LIMIT 1"
            ),
            &[&company],
        )
        .await
        .map_err(|e| db_error("cannot read the newest submitted clave", &e))?
        .map(|r| r.get(0)))
}

/// The document counts health judges: failed within a window, stuck for longer than a
/// delay, and accepted documents whose e-mail was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentCounts {
    pub failed: i64,
    pub stuck: i64,
    pub email_backlog: i64,
}

/// What `DocumentCounts` is counted with (`[einvoice]`). `table` is a plain table name (the
/// config refuses anything else); states travel as parameters.
#[derive(Debug, Clone)]
pub struct DocumentQuery<'a> {
    pub table: &'a str,
    pub failed_states: &'a [String],
    pub stuck_states: &'a [String],
    pub failed_window_s: f64,
    pub stuck_after_s: f64,
}

/// None when the table does not exist (the module is not installed).
pub async fn document_counts(
    client: &impl GenericClient,
    query: &DocumentQuery<'_>,
) -> Result<Option<DocumentCounts>> {
    if !has_table(client, query.table).await? {
        return Ok(None);
    }
    let now = "(now() AT TIME ZONE 'UTC')";
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE state = ANY($1) \
                   AND create_date > {now} - make_interval(secs => $3)), \
                 count(*) FILTER (WHERE state = ANY($2) \
                   AND create_date < {now} - make_interval(secs => $4)), \
                 count(*) FILTER (WHERE state = 'accepted' AND NOT coalesce(email_sent, false)) \
                 FROM {}",
                quote_ident(query.table)
            ),
            &[
                &query.failed_states,
                &query.stuck_states,
                &query.failed_window_s,
                &query.stuck_after_s,
            ],
        )
        .await
        .map_err(|e| {
            db_error(
                &format!("cannot count the documents in {}", query.table),
                &e,
            )
        })?;
    Ok(Some(DocumentCounts {
        failed: row.get(0),
        stuck: row.get(1),
        email_backlog: row.get(2),
    }))
}

/// A queue's backlog: rows in `states`; None when the table does not exist.
pub async fn backlog(
    client: &impl GenericClient,
    table: &str,
    states: &[&str],
) -> Result<Option<i64>> {
    if !has_table(client, table).await? {
        return Ok(None);
    }
    Ok(Some(
        client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE state = ANY($1)",
                    quote_ident(table)
                ),
                &[&states],
            )
            .await
            .map_err(|e| db_error(&format!("cannot count the backlog of {table}"), &e))?
            .get(0),
    ))
}
