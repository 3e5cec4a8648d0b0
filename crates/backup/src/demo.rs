//! `vigia demo`: the main job end to end on embedded defaults. A throwaway PostgreSQL with a
//! small Odoo-shaped database and filestore, fresh keys in a new folder, a backup to a local
//! store, a drill verification, and a second backup that uploads no filestore bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use vigia_core::ports::progress::{Progress, ProgressEvent};
use vigia_core::task::blocking;
use vigia_core::{CancelToken, Config, Error, InitSettings, Outcome, Result};
use vigia_sandbox::odoo::{attach, create_odoo_database, write_file};
use vigia_sandbox::postgres::PgCluster;

use crate::backup::{BackupJob, BackupReport};
use crate::requests::{BackupRequest, VerifyRequest};
use crate::verify::{VerifyJob, VerifyResult};

/// Files in the demo filestore: invoices' XML and PDFs of 4 to 64 KiB.
const FILES: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Where the config, the keys and the store are (kept after the demo).
    pub dir: PathBuf,
    pub config: PathBuf,
    pub store: PathBuf,
    pub first_backup: BackupReport,
    pub drill: VerifyResult,
    pub second_backup: BackupReport,
    /// Commands to look at what the demo made.
    pub next: Vec<String>,
}

impl Outcome for DemoReport {
    fn failure(&self) -> Option<Error> {
        (!self.drill.ok).then(|| {
            Error::new(
                vigia_core::ErrorKind::Integrity,
                format!("the demo's drill failed: {:?}", self.drill.problems),
            )
        })
    }
}

/// Runs the demo in `dir` (a new folder under the system's temp dir when None).
pub async fn run_demo(
    dir: Option<&Path>,
    progress: Arc<dyn Progress>,
    cancel: CancelToken,
) -> Result<DemoReport> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => tempfile::Builder::new()
            .prefix("vigia-demo-")
            .tempdir()
            .map_err(|e| Error::io("create", &std::env::temp_dir(), e))?
            .keep(),
    };
    phase(progress.as_ref(), "start a throwaway PostgreSQL");
    let cluster = blocking("cluster", PgCluster::start).await?;
    create_odoo_database(&cluster, "odoo")?;
    let filestore = dir.join("data/filestore/odoo");
    let files = (0..FILES)
        .map(|i| write_file(&filestore, &demo_file(i)))
        .collect::<Result<Vec<_>>>()?;
    attach(&cluster, "odoo", &files)?;

    let init = vigia_core::init_with(
        &dir,
        &InitSettings {
            data_dir: Some(dir.join("data")),
            postgres_host: cluster.socket_dir().to_string_lossy().into_owned(),
            postgres_port: cluster.port(),
            postgres_user: cluster.user().to_owned(),
            postgres_bin_dir: Some(cluster.bin_dir().to_path_buf()),
        },
    )?;
    let config = Config::load(&init.config, None)?;
    let mut backup = BackupJob::from_config(&config, BackupRequest::default()).await?;
    backup.progress = Arc::clone(&progress);
    backup.cancel = cancel.clone();

    phase(progress.as_ref(), "first backup");
    let first_backup = backup.run().await?;
    phase(progress.as_ref(), "verify --level drill");
    let request = VerifyRequest {
        id: Some(first_backup.id.to_string()),
        all: false,
        level: Some("drill".into()),
    };
    let mut verify = VerifyJob::from_config(&config, &request).await?;
    verify.progress = Arc::clone(&progress);
    verify.cancel = cancel;
    let drill = verify.run().await?.results.remove(0);
    phase(progress.as_ref(), "second backup (unchanged filestore)");
    let second_backup = backup.run().await?;
    drop(cluster);

    let config_arg = init.config.display();
    Ok(DemoReport {
        store: dir.join("backups"),
        next: vec![
            format!("vigia --config {config_arg} backup list"),
            format!(
                "vigia --config {config_arg} backup show {}",
                first_backup.id
            ),
            format!("vigia --config {config_arg} verify --all --level full"),
        ],
        config: init.config,
        dir,
        first_backup,
        drill,
        second_backup,
    })
}

fn phase(progress: &dyn Progress, phase: &str) {
    progress.report(&ProgressEvent::PhaseStarted {
        phase: phase.to_owned(),
        total_bytes: None,
    });
}

/// File `i`: an e-invoice XML or a PDF-like blob of 4 to 64 KiB, different for every `i`.
fn demo_file(i: usize) -> Vec<u8> {
    let size = 4096 + (i * 7919) % (60 * 1024);
    let head = if i.is_multiple_of(2) {
        format!(
            "<?xml version=\"1.0\"?><FacturaElectronica><NumeroConsecutivo>{i:020}</NumeroConsecutivo>"
        )
    } else {
        format!("%PDF-1.7\n% factura {i}\n")
    };
    let mut content = head.into_bytes();
    let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while content.len() < size {
        // xorshift: cheap bytes that do not compress to nothing.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        content.push(b'a' + (state % 26) as u8);
    }
    content
}
