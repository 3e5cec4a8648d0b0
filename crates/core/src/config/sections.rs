//! The config schema: one struct per TOML table. Defaults here are the documented defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::secret::{SecretRef, ValueOrRef};

/// The settings in force for one environment (the base with the environment's overrides).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    pub odoo: OdooConfig,
    #[serde(default)]
    pub postgres: PostgresConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub restore: RestoreConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub smoke: SmokeConfig,
    pub einvoice: Option<EinvoiceConfig>,
    pub redis: Option<RedisConfig>,
    pub hacienda: Option<HaciendaConfig>,
    pub alerting: Option<AlertingConfig>,
    pub deploy: Option<DeployConfig>,
}

fn default_timezone() -> String {
    "America/Costa_Rica".to_owned()
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/vigia")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OdooConfig {
    pub url: Option<String>,
    /// Defaults to `url`.
    pub internal_url: Option<String>,
    pub database: String,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub addons_paths: Vec<PathBuf>,
    #[serde(default = "default_upgrade_command")]
    pub upgrade_command: String,
}

fn default_upgrade_command() -> String {
    "odoo -d {database} -u {modules} --stop-after-init".to_owned()
}

impl OdooConfig {
    /// `internal-url`, else `url`.
    pub fn internal_url(&self) -> Option<&str> {
        self.internal_url.as_deref().or(self.url.as_deref())
    }

    /// `<data-dir>/filestore/<database>`, where Odoo keeps this database's attachments.
    pub fn filestore_dir(&self) -> Option<PathBuf> {
        self.data_dir
            .as_ref()
            .map(|d| d.join("filestore").join(&self.database))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PostgresConfig {
    #[serde(default = "default_pg_host")]
    pub host: String,
    #[serde(default = "default_pg_port")]
    pub port: u16,
    #[serde(default = "default_pg_user")]
    pub user: String,
    pub password: Option<SecretRef>,
    pub bin_dir: Option<PathBuf>,
    /// TLS for every connection (tokio-postgres and the client programs), as libpq means it.
    #[serde(default)]
    pub sslmode: SslMode,
    /// The CA certificate(s), PEM, that the server's certificate must chain to.
    pub sslrootcert: Option<PathBuf>,
}

/// libpq's `sslmode`, but for `allow` (plain text first, TLS only when the server insists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not verified (unless a
    /// root certificate is given, as in libpq).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not verified (unless a root certificate is
    /// given: then as `verify-ca`, as in libpq).
    Require,
    /// TLS, the server's certificate chains to the root certificate; any host name.
    VerifyCa,
    /// As `verify-ca`, and the certificate names the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The value as libpq spells it (PGSSLMODE).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_pg_host() -> String {
    "localhost".to_owned()
}

const fn default_pg_port() -> u16 {
    5432
}

fn default_pg_user() -> String {
    "odoo".to_owned()
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            host: default_pg_host(),
            port: default_pg_port(),
            user: default_pg_user(),
            password: None,
            bin_dir: None,
            sslmode: SslMode::default(),
            sslrootcert: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// Services are managed elsewhere; Vigia never starts or stops them.
    #[default]
    None,
    Compose,
    Local,
}

impl RuntimeKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Compose => "compose",
            Self::Local => "local",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub kind: RuntimeKind,
    pub compose_file: Option<PathBuf>,
    /// For kind = "local": how Odoo is started (run with `sh -c`, in its own session).
    pub odoo_command: Option<String>,
    /// Compose's project name; default: Compose's own (the file's folder name, or
    /// COMPOSE_PROJECT_NAME in its `.env`).
    pub project: Option<String>,
    /// Which compose service is which; absent: the usual names, those not in the file
    /// left unmanaged. Given: each named service must be in the file.
    pub services: Option<ComposeServices>,
    /// The `.env` variable (beside the compose file) that names Odoo's image: the release.
    pub release_variable: Option<String>,
    /// How long `stop` waits before killing a service.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: HumanDuration,
    /// The addons folders inside Odoo's image (absolute), read for a deploy's hashes.
    #[serde(default)]
    pub image_addons: Vec<String>,
    /// Compose's command line, split on spaces (never run by a shell); default: `docker
    /// compose` when the plugin answers, else `docker-compose`.
    pub compose_command: Option<String>,
}

const fn default_stop_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            kind: RuntimeKind::default(),
            compose_file: None,
            odoo_command: None,
            project: None,
            services: None,
            release_variable: None,
            stop_timeout: default_stop_timeout(),
            image_addons: Vec::new(),
            compose_command: None,
        }
    }
}

/// `[runtime.services]`: the compose service of each part of the stack; an absent entry is
/// not managed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeServices {
    pub odoo: Option<String>,
    pub postgres: Option<String>,
    pub nginx: Option<String>,
    pub redis: Option<String>,
}

impl ComposeServices {
    /// The names a stack usually has: odoo, db, nginx, redis.
    pub fn usual() -> Self {
        Self {
            odoo: Some("odoo".into()),
            postgres: Some("db".into()),
            nginx: Some("nginx".into()),
            redis: Some("redis".into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    Local,
    S3,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupConfig {
    pub store: Option<StoreKind>,
    pub path: Option<PathBuf>,
    pub name_key: Option<SecretRef>,
    pub heartbeat_url: Option<String>,
    #[serde(default = "default_grace_period")]
    pub grace_period: HumanDuration,
    #[serde(default = "default_lock_wait")]
    pub lock_wait: HumanDuration,
    /// The store format new backups are written in: 2 (the schema and `jobs` data streams,
    /// restored without a plaintext spool) or 1 (one `pg_dump` archive).
    #[serde(default = "default_backup_format")]
    pub format: u32,
    /// Format 2: how many `pg_dump` processes stream the table data at once.
    #[serde(default = "default_jobs")]
    pub jobs: u32,
    pub s3: Option<S3Config>,
    pub encryption: Option<EncryptionConfig>,
    #[serde(default)]
    pub retention: RetentionConfig,
}

const fn default_grace_period() -> HumanDuration {
    HumanDuration::from_secs(2 * 86_400)
}

const fn default_lock_wait() -> HumanDuration {
    HumanDuration::from_secs(0)
}

const fn default_backup_format() -> u32 {
    2
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            store: None,
            path: None,
            name_key: None,
            heartbeat_url: None,
            grace_period: default_grace_period(),
            lock_wait: default_lock_wait(),
            format: default_backup_format(),
            jobs: default_jobs(),
            s3: None,
            encryption: None,
            retention: RetentionConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct S3Config {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// Omit for AWS.
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub path_style: bool,
    pub access_key: Option<SecretRef>,
    pub secret_key: Option<SecretRef>,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EncryptionConfig {
    /// age x25519 public keys (`age1...`); every backup is readable by each of them.
    pub recipients: Vec<String>,
    /// The private key, needed only to read backups (full verify, drill, restore).
    pub identity: Option<SecretRef>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetentionConfig {
    #[serde(default = "default_keep_last")]
    pub keep_last: u32,
    #[serde(default = "default_keep_daily")]
    pub keep_daily: u32,
    #[serde(default = "default_keep_weekly")]
    pub keep_weekly: u32,
    #[serde(default = "default_keep_monthly")]
    pub keep_monthly: u32,
}

const fn default_keep_last() -> u32 {
    7
}
const fn default_keep_daily() -> u32 {
    14
}
const fn default_keep_weekly() -> u32 {
    8
}
const fn default_keep_monthly() -> u32 {
    12
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            keep_last: default_keep_last(),
            keep_daily: default_keep_daily(),
            keep_weekly: default_keep_weekly(),
            keep_monthly: default_keep_monthly(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthConfig {
    /// Each check's budget; a check that does not answer within it is critical.
    #[serde(default = "default_health_timeout")]
    pub timeout: HumanDuration,
    /// More paths whose filesystems `disk:<mount>` measures (beside data-dir, a local store
    /// and state-dir).
    #[serde(default)]
    pub disk_paths: Vec<PathBuf>,
    /// Host names pinned to addresses for the HTTP checks, like curl's `--resolve`:
    /// `{"erp.example.cr" = "127.0.0.1"}`.
    #[serde(default)]
    pub resolve: std::collections::BTreeMap<String, std::net::IpAddr>,
    /// Roots trusted besides the system's for the HTTPS checks (PEM).
    pub ca_file: Option<PathBuf>,
    /// Odoo's log, for `odoo.log`; else the runtime's.
    pub log_file: Option<PathBuf>,
    /// `odoo.log` counts errors newer than this.
    #[serde(default = "default_log_window")]
    pub log_window: HumanDuration,
    /// A dead man's switch: fetched (GET) after every run, so that a monitor that stops
    /// running is noticed elsewhere. A secret: such URLs carry a token.
    pub heartbeat_url: Option<SecretRef>,
}

const fn default_log_window() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

const fn default_health_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            timeout: default_health_timeout(),
            disk_paths: Vec::new(),
            resolve: std::collections::BTreeMap::new(),
            ca_file: None,
            log_file: None,
            log_window: default_log_window(),
            heartbeat_url: None,
        }
    }
}

/// `[deploy]`: where the releases live. `root/releases/<ref>/` holds one release each and
/// `root/current` links to the one that runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeployConfig {
    pub root: PathBuf,
    /// The addons folders inside a release (relative to it).
    #[serde(default = "default_release_addons")]
    pub addons: Vec<PathBuf>,
    /// The upgrade is killed (and the deploy rolled back) after this long.
    #[serde(default = "default_upgrade_timeout")]
    pub upgrade_timeout: HumanDuration,
    /// The checks a deploy must pass after the switch (health's and smoke's names).
    #[serde(default = "default_gate")]
    pub gate: Vec<String>,
    /// How long the gate waits for them to pass.
    #[serde(default = "default_gate_timeout")]
    pub gate_timeout: HumanDuration,
    /// After the gate, the checks run again every 10 s for this long; a failure rolls back.
    #[serde(default = "default_observe")]
    pub observe: HumanDuration,
    /// Makes a release that is not there (`{ref}`, `{dir}`: the folder to fill), before
    /// anything stops.
    pub fetch_command: Option<String>,
    /// Runs in the new release's folder before anything stops.
    pub build_command: Option<String>,
    /// Releases kept after a deploy (never the current or the previous one).
    #[serde(default = "default_keep_releases")]
    pub keep_releases: usize,
    /// Runs before anything (non-zero: the deploy is refused).
    pub pre_hook: Option<String>,
    /// Runs after the deploy ends, its outcome in VIGIA_OUTCOME (a failure is a warning).
    pub post_hook: Option<String>,
    /// While this file exists, nginx answers 503 (`if (-f ...) { return 503; }`): made
    /// while Odoo is stopped for an upgrade, removed once the internal checks pass.
    pub maintenance_file: Option<PathBuf>,
}

const fn default_observe() -> HumanDuration {
    HumanDuration::from_secs(60)
}

const fn default_keep_releases() -> usize {
    5
}

fn default_release_addons() -> Vec<PathBuf> {
    vec![PathBuf::from("addons")]
}

const fn default_upgrade_timeout() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

fn default_gate() -> Vec<String> {
    [
        "odoo.internal",
        "odoo.public",
        "postgres",
        "smoke.health",
        "smoke.websocket",
        "smoke.version",
    ]
    .map(str::to_owned)
    .to_vec()
}

const fn default_gate_timeout() -> HumanDuration {
    HumanDuration::from_secs(120)
}

/// `[smoke]`: what `vigia smoke` expects of the site at `[odoo] url`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmokeConfig {
    /// The Odoo series `smoke.version` expects (`server_serie`).
    #[serde(default = "default_expect_series")]
    pub expect_series: String,
    /// Where plain HTTP is answered, for `smoke.headers`' redirect; default: the url's host on
    /// port 80.
    pub http_url: Option<String>,
    /// `smoke.score` below this is a warning (0-100).
    #[serde(default = "default_min_score")]
    pub min_score: u8,
}

fn default_expect_series() -> String {
    "19.0".to_owned()
}

const fn default_min_score() -> u8 {
    70
}

impl Default for SmokeConfig {
    fn default() -> Self {
        Self {
            expect_series: default_expect_series(),
            http_url: None,
            min_score: default_min_score(),
        }
    }
}

/// `[redis]`: the stack's Redis, for the `redis` health check.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RedisConfig {
    /// `redis://host:port`.
    pub url: String,
    pub password: Option<SecretRef>,
}

/// `[einvoice]`: the e-invoicing module's tables and states (DOMAIN.md section 3) and the
/// health thresholds on them; every key has the module's default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct EinvoiceConfig {
    pub documents_table: String,
    pub retry_queue_table: String,
    pub pos_queue_table: String,
    pub failed_states: Vec<String>,
    pub stuck_states: Vec<String>,
    /// Failed documents are counted over this window (rejected is final: an all-time count
    /// would stay critical forever).
    pub failed_window: HumanDuration,
    /// A document in a stuck state for longer than this is stuck.
    pub stuck_after: HumanDuration,
    pub failed_warning: i64,
    pub failed_critical: i64,
    pub stuck_warning: i64,
    pub stuck_critical: i64,
    pub retry_backlog_warning: i64,
    pub retry_backlog_critical: i64,
    pub pos_backlog_warning: i64,
    pub pos_backlog_critical: i64,
    pub email_backlog_warning: i64,
    pub email_backlog_critical: i64,
}

impl Default for EinvoiceConfig {
    fn default() -> Self {
        let states = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            documents_table: "l10n_cr_einvoice_document".into(),
            retry_queue_table: "l10n_cr_einvoice_retry_queue".into(),
            pos_queue_table: "l10n_cr_pos_offline_queue".into(),
            failed_states: states(&[
                "generation_error",
                "signing_error",
                "submission_error",
                "error",
                "rejected",
            ]),
            stuck_states: states(&["draft", "generated", "signed", "submitted"]),
            failed_window: HumanDuration::from_secs(7 * 86_400),
            stuck_after: HumanDuration::from_secs(86_400),
            failed_warning: 5,
            failed_critical: 10,
            stuck_warning: 10,
            stuck_critical: 20,
            retry_backlog_warning: 20,
            retry_backlog_critical: 50,
            pos_backlog_warning: 20,
            pos_backlog_critical: 50,
            email_backlog_warning: 10,
            email_backlog_critical: 50,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RestoreConfig {
    #[serde(default = "default_jobs")]
    pub jobs: u32,
    #[serde(default = "default_no_owner")]
    pub no_owner: bool,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub neutralize_sql: Vec<String>,
}

const fn default_jobs() -> u32 {
    2
}

const fn default_no_owner() -> bool {
    true
}

impl Default for RestoreConfig {
    fn default() -> Self {
        Self {
            jobs: default_jobs(),
            no_owner: default_no_owner(),
            role: String::new(),
            neutralize_sql: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HaciendaEnvironment {
    #[default]
    Sandbox,
    Production,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HaciendaConfig {
    /// The Hacienda environment this stack must use; else production in an environment
    /// marked `production = true`, sandbox in another named environment.
    pub environment: Option<HaciendaEnvironment>,
    /// Set: these credentials are checked instead of the companies' own.
    pub username: Option<ValueOrRef>,
    pub password: Option<SecretRef>,
    /// Set: this key is checked instead of the companies' attachments.
    pub certificate: Option<PathBuf>,
    pub pin: Option<SecretRef>,
    pub cedula: Option<String>,
    /// The identity provider's base; the realm follows the environment.
    pub idp_url: Option<String>,
    /// The reception API's base; default per environment.
    pub api_url: Option<String>,
    /// After a refused login, no login for this long (Hacienda locks accounts).
    #[serde(default = "default_hacienda_backoff")]
    pub backoff: HumanDuration,
    /// A passing probe is reused for this long.
    #[serde(default = "default_hacienda_cache")]
    pub cache_for: HumanDuration,
}

const fn default_hacienda_backoff() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

const fn default_hacienda_cache() -> HumanDuration {
    HumanDuration::from_secs(900)
}

impl HaciendaEnvironment {
    /// The IdP realm and client, and the reception API (DOMAIN.md 4).
    pub const fn realm(self) -> (&'static str, &'static str) {
        match self {
            Self::Sandbox => ("rut-stag", "api-stag"),
            Self::Production => ("rut", "api-prod"),
        }
    }

    pub const fn default_api_url(self) -> &'static str {
        match self {
            Self::Sandbox => {
                "https://api-sandbox.comprobanteselectronicos.go.cr/recepcion/v1/recepcion/"
            }
            Self::Production => {
                "https://api.comprobanteselectronicos.go.cr/recepcion/v1/recepcion/"
            }
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Production => "production",
        }
    }

    /// The domain part its usernames carry: `@stag.` or `@prod.`.
    pub const fn user_marker(self) -> &'static str {
        match self {
            Self::Sandbox => "@stag.",
            Self::Production => "@prod.",
        }
    }
}

/// The IdP's base when `idp-url` is not set.
pub const DEFAULT_IDP_URL: &str = "https://idp.comprobanteselectronicos.go.cr/auth";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertingConfig {
    #[serde(default)]
    pub email_to: Vec<String>,
    /// The From of alert e-mails; required with `email-to`.
    pub email_from: Option<String>,
    /// `smtp://[user@]host[:port]` (STARTTLS, plain only to loopback) or `smtps://` (TLS).
    pub smtp_url: Option<String>,
    pub smtp_password: Option<SecretRef>,
    pub webhook_url: Option<SecretRef>,
    /// Bad runs in a row before a check's incident opens.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// Good runs in a row before an open incident resolves.
    #[serde(default = "default_success_threshold")]
    pub success_threshold: u32,
    /// The least severe status that counts as bad (unknown always does).
    #[serde(default)]
    pub alert_on: AlertOn,
    /// An incident still open is announced again this often.
    #[serde(default = "default_reminder")]
    pub reminder: HumanDuration,
    /// Roots trusted besides the system's for the SMTP server and the webhook (PEM).
    pub ca_file: Option<PathBuf>,
}

const fn default_failure_threshold() -> u32 {
    3
}

const fn default_success_threshold() -> u32 {
    2
}

const fn default_reminder() -> HumanDuration {
    HumanDuration::from_secs(6 * 3600)
}

/// `[alerting] alert-on`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertOn {
    #[default]
    Critical,
    Warning,
}
