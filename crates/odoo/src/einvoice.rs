//! The e-invoicing module's documents (`l10n_cr_einvoice_document`, DOMAIN.md section 3): what
//! a restore must not make Odoo forget while Hacienda has their claves. `create_date` is UTC
//! without a time zone; the consecutive is the clave's 20 digits after 506 + date + issuer id.

use tokio_postgres::GenericClient;
use vigia_core::Result;
use vigia_pg::{db_error, has_table};

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
