//! The shared Odoo stack (vigia-sandbox's `fixture`) with keys and the jobs of a backup,
//! prune and verify on a fixture's store. vigia-restore's tests include this file too.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use vigia_backup::format::NameKey;
use vigia_backup::{
    BackupJob, DumpLayout, Identity, PruneJob, Selection, StoreAccess, VerifyJob, VerifyLevel,
    open_sealed,
};
use vigia_core::config::{RetentionConfig, Secret, SecretRef};
use vigia_core::ports::clock::SystemClock;
use vigia_core::ports::progress::NoProgress;
use vigia_pg::PgTarget;
use vigia_sandbox::fixture::OdooStack;
use vigia_sandbox::postgres::PgCluster;

use super::Fixture;

pub use vigia_sandbox::fixture::{SECRET_FILE, SECRET_ROW};

/// A cluster with database `odoo` holding the module's tables (and no stack's data).
pub fn odoo_cluster() -> PgCluster {
    let cluster = PgCluster::start().unwrap();
    vigia_sandbox::odoo::create_odoo_database(&cluster, "odoo").unwrap();
    cluster
}

/// The cluster as a backup target (Unix socket, its own client binaries).
pub fn target(cluster: &PgCluster) -> PgTarget {
    PgTarget::unix_socket(
        cluster.socket_dir(),
        cluster.port(),
        cluster.user(),
        Some(cluster.bin_dir()),
    )
}

/// Rows in `ir_attachment` for filestore files (`xx/sha1` names).
pub fn attach(cluster: &PgCluster, files: &[String]) {
    vigia_sandbox::odoo::attach(cluster, "odoo", files).unwrap();
}

/// The format these tests' backups are written in: 2 (two data streams), or 1 when
/// `VIGIA_TEST_FORMAT=1` (scripts/test runs the backup and restore tests in both).
pub fn layout() -> DumpLayout {
    match std::env::var("VIGIA_TEST_FORMAT").as_deref() {
        Ok("1") => DumpLayout::OneArchive,
        _ => DumpLayout::Parts { streams: 2 },
    }
}

pub struct Stack {
    /// The cluster, the filestore and its files.
    pub odoo: OdooStack,
    pub identity: Identity,
    /// Holds `identity.key` (0600), for `file:` references.
    pub keys: tempfile::TempDir,
    pub job: BackupJob,
}

/// 31 files (one with a known secret content) and a known secret row.
pub fn stack(fixture: &Fixture) -> Stack {
    let odoo = OdooStack::start().unwrap();
    let identity = Identity::generate();
    let keys = tempfile::tempdir().unwrap();
    let identity_file = keys.path().join("identity.key");
    std::fs::write(&identity_file, identity.to_file_text()).unwrap();
    std::fs::set_permissions(&identity_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let job = BackupJob {
        store: fixture.shared_store(),
        name_key: NameKey::from_secret(&Secret::new(hex::encode([5u8; 32]))).unwrap(),
        recipients: identity.recipients(),
        target: target(&odoo.cluster),
        database: "odoo".into(),
        filestore_dir: Some(odoo.filestore.path().to_path_buf()),
        allow_missing_files: false,
        layout: layout(),
        lock_wait: std::time::Duration::ZERO,
        os_lock_dir: match fixture {
            Fixture::Local(dir, _) => Some(dir.path().join("store")),
            Fixture::S3(..) => None,
        },
        clock: Arc::new(SystemClock),
        progress: Arc::new(NoProgress),
        cancel: vigia_core::CancelToken::new(),
        state_dir: None,
        heartbeat_url: None,
        addons_paths: Vec::new(),
        extra: Vec::new(),
    };
    Stack {
        odoo,
        identity,
        keys,
        job,
    }
}

impl std::ops::Deref for Stack {
    type Target = OdooStack;

    fn deref(&self) -> &OdooStack {
        &self.odoo
    }
}

impl Stack {
    /// The store with the name key, and the identity when `with_identity`.
    pub fn access(&self, with_identity: bool) -> StoreAccess {
        let identity = format!("file:{}", self.keys.path().join("identity.key").display());
        StoreAccess {
            store: Arc::clone(&self.job.store),
            name_key: self.job.name_key.clone(),
            identity: with_identity.then(|| SecretRef::parse(&identity).unwrap()),
        }
    }

    /// A prune with `retention` (last, daily, weekly, monthly) and `grace`, as if run at `now`.
    pub fn prune_job(
        &self,
        retention: [u32; 4],
        grace: std::time::Duration,
        now: jiff::Timestamp,
        dry_run: bool,
    ) -> PruneJob {
        let [keep_last, keep_daily, keep_weekly, keep_monthly] = retention;
        PruneJob {
            access: self.access(false),
            retention: RetentionConfig {
                keep_last,
                keep_daily,
                keep_weekly,
                keep_monthly,
            },
            timezone: jiff::tz::TimeZone::get("America/Costa_Rica").unwrap(),
            grace_period: grace,
            dry_run,
            lock_wait: std::time::Duration::ZERO,
            os_lock_dir: self.job.os_lock_dir.clone(),
            clock: Arc::new(vigia_core::ports::clock::FixedClock(now)),
        }
    }

    /// How many throwaway roles (`vigia_tmp_*`) the cluster holds: none may outlive a run.
    pub fn throwaway_roles(&self) -> String {
        self.odoo.throwaway_roles().unwrap()
    }

    pub fn verify_job(&self, level: Option<VerifyLevel>, selection: Selection) -> VerifyJob {
        VerifyJob {
            access: self.access(true),
            level,
            selection,
            target: target(&self.cluster),
            clock: Arc::new(SystemClock),
            progress: Arc::new(NoProgress),
            cancel: vigia_core::CancelToken::new(),
            state_dir: None,
            environment: None,
            concurrency: 4,
            lock_wait: std::time::Duration::ZERO,
        }
    }
}

/// A sealed object decrypted to the end.
pub async fn read_all(fixture: &Fixture, key: &str, identity: &Identity) -> Vec<u8> {
    let mut reader = open_sealed(fixture.store(), key, identity).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap()
}

/// Every public table's rows, in a stable order, hashed: `table md5` lines.
pub fn checksums(s: &Stack, database: &str) -> String {
    s.odoo.checksums(database).unwrap()
}

/// The sha1 of every file under `dir` (its content, not its name).
pub fn sha1_set(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    vigia_sandbox::fixture::sha1_set(dir).unwrap()
}

pub fn databases(s: &Stack) -> String {
    s.odoo.databases().unwrap()
}
