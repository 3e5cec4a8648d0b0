//! An Odoo-shaped stack for backup tests: a throwaway cluster with the module's tables and
//! data, a filestore, keys, and a backup job and verify job on a fixture's store.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use vigia_backup::format::NameKey;
use vigia_backup::{
    BackupJob, Identity, PruneJob, Selection, StoreAccess, VerifyJob, VerifyLevel, open_sealed,
};
use vigia_core::config::{RetentionConfig, Secret, SecretRef, SslMode};
use vigia_core::ports::clock::SystemClock;
use vigia_core::ports::progress::NoProgress;
use vigia_pg::PgTarget;
use vigia_sandbox::postgres::PgCluster;

use super::Fixture;

pub const SECRET_ROW: &str = "Distribuidora Secreta Limitada";
pub const SECRET_FILE: &[u8] = b"<Clave>50628112600310112345600100001010000000001100000001</Clave>";

/// A cluster with database `odoo` holding the module's tables.
pub fn odoo_cluster() -> PgCluster {
    let cluster = PgCluster::start().unwrap();
    vigia_sandbox::odoo::create_odoo_database(&cluster, "odoo").unwrap();
    cluster
}

/// The cluster as a backup target (Unix socket, its own client binaries).
pub fn target(cluster: &PgCluster) -> PgTarget {
    PgTarget {
        host: cluster.socket_dir().to_str().unwrap().to_owned(),
        port: cluster.port(),
        user: cluster.user().to_owned(),
        password: None,
        bin_dir: Some(cluster.bin_dir().to_path_buf()),
        sslmode: SslMode::Prefer,
        sslrootcert: None,
    }
}

/// Rows in `ir_attachment` for filestore files (`xx/sha1` names).
pub fn attach(cluster: &PgCluster, files: &[String]) {
    vigia_sandbox::odoo::attach(cluster, "odoo", files).unwrap();
}

pub struct Stack {
    pub cluster: PgCluster,
    pub filestore: tempfile::TempDir,
    /// The filestore files, `xx/sha1`.
    pub files: Vec<String>,
    pub identity: Identity,
    /// Holds `identity.key` (0600), for `file:` references.
    pub keys: tempfile::TempDir,
    pub job: BackupJob,
}

/// 31 files (one with a known secret content) and a known secret row.
pub fn stack(fixture: &Fixture) -> Stack {
    let cluster = odoo_cluster();
    cluster
        .psql(
            "odoo",
            &format!("INSERT INTO res_partner (name) VALUES ('{SECRET_ROW}')"),
        )
        .unwrap();
    let filestore = tempfile::tempdir().unwrap();
    let mut files: Vec<String> = (0..30)
        .map(|i| super::odoo_file(filestore.path(), format!("adjunto {i}").as_bytes()))
        .collect();
    files.push(super::odoo_file(filestore.path(), SECRET_FILE));
    attach(&cluster, &files);
    let identity = Identity::generate();
    let keys = tempfile::tempdir().unwrap();
    let identity_file = keys.path().join("identity.key");
    std::fs::write(&identity_file, identity.to_file_text()).unwrap();
    std::fs::set_permissions(&identity_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let job = BackupJob {
        store: fixture.shared_store(),
        name_key: NameKey::from_secret(&Secret::new(hex::encode([5u8; 32]))).unwrap(),
        recipients: identity.recipients(),
        target: target(&cluster),
        database: "odoo".into(),
        filestore_dir: Some(filestore.path().to_path_buf()),
        allow_missing_files: false,
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
        cluster,
        filestore,
        files,
        identity,
        keys,
        job,
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

    /// A restore of `id` into `target_db`, its filestore under `root/<target_db>`.
    pub fn restore_job(
        &self,
        id: &vigia_backup::format::BackupId,
        target_db: &str,
        root: &std::path::Path,
    ) -> vigia_backup::RestoreJob {
        vigia_backup::RestoreJob {
            access: self.access(true),
            target: target(&self.cluster),
            source: vigia_backup::RestoreSource::Backup(id.clone()),
            target_db: Some(target_db.to_owned()),
            confirm: None,
            accept_einvoice_loss: false,
            force_sessions: false,
            neutralize: false,
            base_url: None,
            neutralize_sql: Vec::new(),
            trust_zip: false,
            production: false,
            runtime: Arc::new(vigia_runtime::NoRuntime),
            odoo_url: None,
            health_timeout: vigia_backup::HEALTH_TIMEOUT,
            filestore_root: Some(root.to_path_buf()),
            live_db: "odoo".into(),
            options: vigia_pg::RestoreOptions {
                jobs: 2,
                no_owner: true,
                role: None,
            },
            spool_dir: self.keys.path().join("spool"),
            records_dir: self.keys.path().join("restores"),
            environment: None,
            swap_journal: vigia_backup::swap_journal_path(self.keys.path()),
            lock_wait: std::time::Duration::ZERO,
            os_lock_dir: self.job.os_lock_dir.clone(),
            progress: Arc::new(NoProgress),
            cancel: vigia_core::CancelToken::new(),
        }
    }

    /// A restore of `id` that replaces the live database, the filestore under `root`.
    pub fn swap_job(
        &self,
        id: &vigia_backup::format::BackupId,
        root: &std::path::Path,
    ) -> vigia_backup::RestoreJob {
        let mut job = self.restore_job(id, "unused", root);
        job.target_db = None;
        job
    }

    /// How many throwaway roles (`vigia_tmp_*`) the cluster holds: none may outlive a restore.
    pub fn throwaway_roles(&self) -> String {
        self.cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'vigia\\_tmp\\_%'",
            )
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `restore --cleanup` of this stack's restores (records in the keys folder), with
    /// `root` as `<data-dir>/filestore`.
    pub fn cleanup_job(&self, root: &std::path::Path, apply: bool) -> vigia_backup::RestoreCleanup {
        vigia_backup::RestoreCleanup {
            access: self.access(true),
            target: target(&self.cluster),
            live_db: "odoo".into(),
            filestore_root: Some(root.to_path_buf()),
            spool_dir: self.keys.path().join("spool"),
            records_dir: self.keys.path().join("restores"),
            environment: None,
            swap_journal: vigia_backup::swap_journal_path(self.keys.path()),
            production: false,
            confirm: None,
            apply,
            lock_wait: std::time::Duration::ZERO,
            os_lock_dir: self.job.os_lock_dir.clone(),
        }
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
    let tables = s
        .cluster
        .psql(
            database,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .unwrap();
    tables
        .lines()
        .map(|t| {
            let sum = s
                .cluster
                .psql(
                    database,
                    &format!(
                        "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
                         FROM \"{t}\" t"
                    ),
                )
                .unwrap();
            format!("{t} {}", sum.trim())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sha1 of every file under `dir` (its content, not its name).
pub fn sha1_set(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    use sha1::Digest;
    let mut out = std::collections::BTreeSet::new();
    for sub in std::fs::read_dir(dir).unwrap().flatten() {
        for file in std::fs::read_dir(sub.path()).unwrap().flatten() {
            let content = std::fs::read(file.path()).unwrap();
            out.insert(hex::encode(sha1::Sha1::digest(&content)));
        }
    }
    out
}

pub fn databases(s: &Stack) -> String {
    s.cluster
        .psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
        .unwrap()
}
