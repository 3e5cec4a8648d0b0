//! `--neutralize`: what Odoo's own neutralization does (crons, outgoing and incoming mail,
//! `database.is_neutralized`, a new `database.uuid`, `web.base.url`), plus the Hacienda
//! credentials and certificate, so a restored copy can never send a real e-invoice or e-mail.
//! One transaction: a copy is neutralized completely or not at all.
//!
//! The e-invoicing module's company fields are known by name (DOMAIN.md section 3): the copy
//! is pointed at Hacienda's sandbox with automatic submission off, the username, password and
//! `.p12` PIN are cleared, and the certificate and private-key attachments and their files
//! removed. Fields it does not list are found by name as a fallback: `res_company` columns and
//! `ir_config_parameter` keys under `l10n_cr` whose name has a credential word, and the
//! company's binary fields of that kind stored as attachments.

use std::path::Path;

use serde::Serialize;
use tokio_postgres::Transaction;
use vigia_core::{Error, ErrorKind, Result};

use vigia_pg::{PgTarget, db_error, has_table, quote_ident};

/// A credential word as a whole `_`-separated part of a column name or parameter key.
const CREDENTIAL: &str = "(^|[_.])(user|username|login|password|passwd|pass|pin|secret|token|\
api_key|key|certificate|cert|p12|llave|credentials?)([_.]|$)";

/// The module's settings a copy must have, whatever the live database says: Hacienda's
/// sandbox, and no automatic submission.
const SETTINGS: &[(&str, &str)] = &[
    ("l10n_cr_hacienda_env", "'sandbox'"),
    ("l10n_cr_auto_submit_einvoice", "false"),
];

/// The module's credential columns on `res_company`: cleared.
const SECRETS: &[&str] = &[
    "l10n_cr_hacienda_username",
    "l10n_cr_hacienda_password",
    "l10n_cr_key_password",
];

/// The module's columns that are neither: kept, even where a credential word is in the name.
const KEPT: &[&str] = &[
    "l10n_cr_certificate_filename",
    "l10n_cr_private_key_filename",
    "l10n_cr_auto_send_email",
];

/// The module's binary fields stored as attachments: the certificate and its private key.
const CERTIFICATE_FIELDS: &[&str] = &["l10n_cr_certificate", "l10n_cr_private_key"];

/// The server Odoo's own neutralization adds: with every real one inactive Odoo would fall
/// back to the SMTP server of its config file; this one points nowhere.
const DUMMY_MAIL_SERVER: &str = "INSERT INTO ir_mail_server (name, smtp_port, smtp_host, \
     smtp_encryption, active, smtp_authentication) VALUES ('neutralization - disable emails', \
     1025, 'invalid', 'none', true, 'login')";

/// What `--neutralize` did to the restored copy (in `vigia restore --json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct NeutralizeReport {
    /// One line per built-in step, with what it changed or why it did nothing.
    pub steps: Vec<String>,
    /// The module's settings forced: `res_company.column = value`.
    pub set: Vec<String>,
    /// Hacienda credentials cleared: `table.column` or `ir_config_parameter:key`.
    pub cleared: Vec<String>,
    /// Certificate files removed from the restored filestore (`xx/sha1`).
    pub removed_files: Vec<String>,
    /// How many `[restore] neutralize-sql` statements ran.
    pub statements: usize,
}

/// The neutralization of one restored copy: `run` it once the copy exists.
#[derive(Debug)]
pub struct Neutralize<'a> {
    /// `[odoo] url` of the environment restored into: the copy's `web.base.url`.
    pub base_url: Option<&'a str>,
    /// `[restore] neutralize-sql`, run after the built-in steps.
    pub extra_sql: &'a [String],
}

impl Neutralize<'_> {
    /// Neutralizes `database`, whose filestore (if any) is `filestore`.
    pub async fn run(
        &self,
        target: &PgTarget,
        database: &str,
        filestore: Option<&Path>,
    ) -> Result<NeutralizeReport> {
        let mut client = target.connect(database).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_error("cannot begin the neutralization", &e))?;
        let mut report = NeutralizeReport::default();
        crons(&tx, &mut report).await?;
        mail(&tx, &mut report).await?;
        self.parameters(&tx, &mut report).await?;
        company_columns(&tx, &mut report).await?;
        let files = certificate_attachments(&tx, &mut report).await?;
        for (i, sql) in self.extra_sql.iter().enumerate() {
            tx.batch_execute(sql).await.map_err(|e| {
                db_error(
                    &format!(
                        "[restore] neutralize-sql statement {} failed (nothing was neutralized)",
                        i + 1
                    ),
                    &e,
                )
            })?;
            report.statements += 1;
        }
        tx.commit()
            .await
            .map_err(|e| db_error("cannot commit the neutralization", &e))?;
        // Files go only once the rows naming them are gone for good.
        if let Some(dir) = filestore {
            for fname in files {
                let path = crate::filestore::file_path(dir, &fname)?;
                match std::fs::remove_file(&path) {
                    Ok(()) => report.removed_files.push(fname),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", &path, e)),
                }
            }
        }
        Ok(report)
    }

    async fn parameters(&self, tx: &Transaction<'_>, report: &mut NeutralizeReport) -> Result<()> {
        if !has_table(tx, "ir_config_parameter").await? {
            report
                .steps
                .push("ir_config_parameter: no such table, nothing to mark".into());
            return Ok(());
        }
        let set = "INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2) \
                   ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
        exec(tx, set, &[&"database.is_neutralized", &"True"]).await?;
        let uuid: String = tx
            .query_one("SELECT gen_random_uuid()::text", &[])
            .await
            .map_err(|e| db_error("cannot make a new database.uuid", &e))?
            .get(0);
        exec(tx, set, &[&"database.uuid", &uuid.as_str()]).await?;
        report.steps.push(format!(
            "database.is_neutralized set; new database.uuid {uuid}"
        ));
        match self.base_url {
            Some(url) => {
                exec(tx, set, &[&"web.base.url", &url]).await?;
                report.steps.push(format!("web.base.url set to {url}"));
            }
            None => report
                .steps
                .push("web.base.url kept: [odoo] url is not set in this environment".into()),
        }
        let rows = tx
            .query(
                "DELETE FROM ir_config_parameter WHERE key ILIKE 'l10n\\_cr%' AND key ~* $1 \
                 RETURNING key",
                &[&CREDENTIAL],
            )
            .await
            .map_err(|e| db_error("cannot clear the Hacienda parameters", &e))?;
        report.cleared.extend(
            rows.iter()
                .map(|r| format!("ir_config_parameter:{}", r.get::<_, String>(0))),
        );
        Ok(())
    }
}

async fn crons(tx: &Transaction<'_>, report: &mut NeutralizeReport) -> Result<()> {
    if !has_table(tx, "ir_cron").await? {
        report.steps.push("ir_cron: no such table".into());
        return Ok(());
    }
    // Odoo keeps its autovacuum running in a neutralized database; so does this.
    let keep = if has_table(tx, "ir_model_data").await? {
        " AND id NOT IN (SELECT res_id FROM ir_model_data WHERE module = 'base' \
         AND name = 'autovacuum_job' AND model = 'ir.cron' AND res_id IS NOT NULL)"
    } else {
        ""
    };
    let n = exec(
        tx,
        &format!("UPDATE ir_cron SET active = false WHERE active{keep}"),
        &[],
    )
    .await?;
    report
        .steps
        .push(format!("ir_cron: {n} scheduled actions deactivated"));
    Ok(())
}

async fn mail(tx: &Transaction<'_>, report: &mut NeutralizeReport) -> Result<()> {
    if has_table(tx, "ir_mail_server").await? {
        let n = exec(
            tx,
            "UPDATE ir_mail_server SET active = false WHERE active",
            &[],
        )
        .await?;
        exec(tx, DUMMY_MAIL_SERVER, &[]).await?;
        report.steps.push(format!(
            "ir_mail_server: {n} outgoing mail servers deactivated; one at host `invalid` \
             added so Odoo cannot fall back to its config file's SMTP server"
        ));
    } else {
        report.steps.push("ir_mail_server: no such table".into());
    }
    if has_table(tx, "fetchmail_server").await? {
        let n = exec(
            tx,
            "UPDATE fetchmail_server SET active = false WHERE active",
            &[],
        )
        .await?;
        report.steps.push(format!(
            "fetchmail_server: {n} incoming mail servers deactivated"
        ));
    }
    Ok(())
}

/// The module's settings forced, and the company's Hacienda credential columns (known by
/// name, else found by a credential word) cleared: NULL where allowed, else the empty value
/// of their type.
async fn company_columns(tx: &Transaction<'_>, report: &mut NeutralizeReport) -> Result<()> {
    let columns = tx
        .query(
            "SELECT column_name::text, is_nullable = 'YES', data_type::text, \
             column_name ~* $1 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'res_company' \
             AND column_name LIKE 'l10n\\_cr\\_%' ORDER BY ordinal_position",
            &[&CREDENTIAL],
        )
        .await
        .map_err(|e| db_error("cannot read res_company's columns", &e))?;
    for row in &columns {
        let (column, nullable, kind, credential): (String, bool, String, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if let Some((_, value)) = SETTINGS.iter().find(|(name, _)| *name == column) {
            exec(
                tx,
                &format!("UPDATE res_company SET {} = {value}", quote_ident(&column)),
                &[],
            )
            .await?;
            report.set.push(format!("res_company.{column} = {value}"));
            continue;
        }
        let secret = SECRETS.contains(&column.as_str());
        if !secret && (KEPT.contains(&column.as_str()) || !credential) {
            continue;
        }
        let empty = match (nullable, kind.as_str()) {
            (true, _) => "NULL",
            (false, "character varying" | "text" | "character") => "''",
            (false, "boolean") => "false",
            (false, "jsonb" | "json") => "'{}'",
            (false, other) => {
                return Err(Error::new(
                    ErrorKind::Database,
                    format!(
                        "cannot clear res_company.{column} ({other} NOT NULL); nothing was \
                         neutralized: add a statement for it to [restore] neutralize-sql"
                    ),
                ));
            }
        };
        exec(
            tx,
            &format!("UPDATE res_company SET {} = {empty}", quote_ident(&column)),
            &[],
        )
        .await?;
        report.cleared.push(format!("res_company.{column}"));
    }
    Ok(())
}

/// Deletes the company's credential fields stored as attachments (the `.p12` and its
/// kind); returns the filestore files no other attachment references.
async fn certificate_attachments(
    tx: &Transaction<'_>,
    report: &mut NeutralizeReport,
) -> Result<Vec<String>> {
    let has_field = tx
        .query_one(
            "SELECT count(*) = 2 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'ir_attachment' \
             AND column_name IN ('res_field', 'store_fname')",
            &[],
        )
        .await
        .map_err(|e| db_error("cannot read ir_attachment's columns", &e))?
        .get::<_, bool>(0);
    if !has_field {
        return Ok(Vec::new());
    }
    let known: Vec<String> = CERTIFICATE_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let mut rows = tx
        .query(
            "DELETE FROM ir_attachment WHERE res_model = 'res.company' \
             AND (res_field = ANY($2) OR (res_field LIKE 'l10n\\_cr\\_%' AND res_field ~* $1)) \
             RETURNING res_field, store_fname",
            &[&CREDENTIAL, &known],
        )
        .await
        .map_err(|e| db_error("cannot delete the certificate attachments", &e))?;
    // The module's fields first, in its order, then those found by name.
    rows.sort_by_key(|row| {
        let field: String = row.get(0);
        let rank = CERTIFICATE_FIELDS
            .iter()
            .position(|f| *f == field)
            .unwrap_or(CERTIFICATE_FIELDS.len());
        (rank, field)
    });
    let mut files = Vec::new();
    for row in &rows {
        let (field, fname): (String, Option<String>) = (row.get(0), row.get(1));
        report
            .cleared
            .push(format!("ir_attachment:res.company.{field}"));
        let Some(fname) = fname else { continue };
        let still_used = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM ir_attachment WHERE store_fname = $1)",
                &[&fname],
            )
            .await
            .map_err(|e| db_error("cannot read ir_attachment", &e))?
            .get::<_, bool>(0);
        if !still_used {
            files.push(fname);
        }
    }
    Ok(files)
}

async fn exec(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64> {
    tx.execute(sql, params)
        .await
        .map_err(|e| db_error(&format!("neutralization step failed: {sql}"), &e))
}
