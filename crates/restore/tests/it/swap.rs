//! The swap of an in-place restore against real PostgreSQL, with clients that behave like
//! Odoo's workers: sessions that reconnect as soon as they are ended, on the live database
//! and on the restored copy, both on the way in and on the way back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crate::common::Fixture;
use crate::common::Restores;
use crate::common::odoo::{Stack, checksums, stack, target};
use async_trait::async_trait;
use vigia_backup::format::BackupId;
use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::{Runtime, RuntimeAction, Service, ServiceState};
use vigia_core::{Error, Result};
use vigia_restore::RestoreJob;

/// Connects to `database` as `application_name`, the connection driven by a task of its own.
async fn connect(
    s: &Stack,
    database: &str,
    application_name: &str,
) -> std::result::Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>
{
    let t = target(&s.cluster);
    let (client, connection) = tokio_postgres::Config::new()
        .host(&t.host)
        .port(t.port)
        .user(&t.user)
        .dbname(database)
        .application_name(application_name)
        .connect(tokio_postgres::NoTls)
        .await?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, driver))
}

/// A session on `database` that comes back as soon as it is ended (or the database appears
/// or opens), until dropped: how Odoo's workers treat a database.
struct Reconnecting {
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU32>,
}

impl Reconnecting {
    fn start(s: &Stack, database: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU32::new(0));
        let t = target(&s.cluster);
        let database = database.to_owned();
        let (stop2, connections2) = (Arc::clone(&stop), Arc::clone(&connections));
        tokio::spawn(async move {
            while !stop2.load(Ordering::SeqCst) {
                let connected = tokio_postgres::Config::new()
                    .host(&t.host)
                    .port(t.port)
                    .user(&t.user)
                    .dbname(&database)
                    .application_name("odoo-worker")
                    .connect(tokio_postgres::NoTls)
                    .await;
                match connected {
                    Ok((client, connection)) => {
                        connections2.fetch_add(1, Ordering::SeqCst);
                        // Held until the server ends it (or the test does).
                        tokio::select! {
                            _ = connection => {}
                            () = async {
                                while !stop2.load(Ordering::SeqCst) {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            } => {}
                        }
                        drop(client);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        });
        Self { stop, connections }
    }

    fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Reconnecting {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A runtime that stops Odoo and fails to start it the first `failures` times (so the check
/// after the swap fails and the swap is undone), then starts it.
#[derive(Debug)]
struct StartFails {
    failures: AtomicU32,
}

#[async_trait]
impl Runtime for StartFails {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Local
    }

    async fn status(&self, _: Service) -> Result<ServiceState> {
        Ok(ServiceState::Stopped)
    }

    async fn start(&self, _: Service) -> Result<RuntimeAction> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(Error::internal("Odoo did not start (test runtime)"));
        }
        Ok(RuntimeAction::Done)
    }

    async fn stop(&self, _: Service) -> Result<RuntimeAction> {
        Ok(RuntimeAction::Done)
    }

    async fn logs(&self, _: Service, _: usize) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

fn suffix(id: &BackupId) -> String {
    id.as_str().to_lowercase().replace('-', "_")
}

/// An in-place restore job of `id` with `runtime`, filestores under `root`.
fn in_place(
    s: &Stack,
    id: &BackupId,
    root: &std::path::Path,
    runtime: Arc<dyn Runtime>,
) -> RestoreJob {
    let mut job = s.swap_job(id, root);
    job.runtime = runtime;
    job
}

/// A stack with a backup taken, then every partner renamed (the live database differs
/// from the backup); the backup's id and the tables' checksums at backup time.
async fn backed_up_then_changed(fixture: &Fixture) -> (Stack, BackupId, String) {
    let s = stack(fixture);
    let backup = s.job.run().await.unwrap();
    let tables_then = checksums(&s, "odoo");
    s.cluster
        .psql("odoo", "UPDATE res_partner SET name = 'cambiado'")
        .unwrap();
    (s, backup.id, tables_then)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swap_goes_through_while_clients_keep_reconnecting_to_both_databases() {
    let fixture = Fixture::local();
    let (s, id, tables_then) = backed_up_then_changed(&fixture).await;
    let live = Reconnecting::start(&s, "odoo");
    let restored = Reconnecting::start(&s, &format!("vigia_restore_{}", suffix(&id)));
    let root = tempfile::tempdir().unwrap();

    let runtime = Arc::new(StartFails {
        failures: AtomicU32::new(0),
    });
    let report = in_place(&s, &id, root.path(), runtime).run().await.unwrap();
    assert!(report.swapped);
    assert!(live.connections() > 0 && restored.connections() > 0);
    drop((live, restored));
    assert_eq!(checksums(&s, "odoo"), tables_then);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swap_goes_back_while_clients_keep_reconnecting_to_both_databases() {
    let fixture = Fixture::local();
    let (s, id, _) = backed_up_then_changed(&fixture).await;
    let tables_live = checksums(&s, "odoo");
    let live = Reconnecting::start(&s, "odoo");
    let restored = Reconnecting::start(&s, &format!("vigia_restore_{}", suffix(&id)));
    let aside = Reconnecting::start(&s, &format!("odoo_pre_restore_{}", suffix(&id)));
    let root = tempfile::tempdir().unwrap();

    // Odoo does not start after the swap: the check fails and the swap is undone.
    let runtime = Arc::new(StartFails {
        failures: AtomicU32::new(1),
    });
    let err = in_place(&s, &id, root.path(), runtime)
        .run()
        .await
        .unwrap_err();
    let message = err.message();
    assert!(message.contains("Odoo did not start"), "{message}");
    assert!(message.contains("swapped back"), "{message}");
    assert!(!message.contains("failed too"), "{message}");
    assert!(!message.contains("the state now"), "{message}");
    assert!(
        aside.connections() > 0,
        "the aside copy was open for a while"
    );
    drop((live, restored, aside));
    assert_eq!(
        checksums(&s, "odoo"),
        tables_live,
        "the live database is back"
    );
    let (client, _driver) = connect(&s, "odoo", "check").await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_runtime_none_a_swap_is_refused_while_odoo_is_connected_unless_forced() {
    let fixture = Fixture::local();
    let (s, id, _) = backed_up_then_changed(&fixture).await;
    let tables_live = checksums(&s, "odoo");
    let databases_before = crate::common::odoo::databases(&s);
    let (worker, _driver) = connect(&s, "odoo", "odoo-worker").await.unwrap();
    let root = tempfile::tempdir().unwrap();

    let mut job = in_place(&s, &id, root.path(), Arc::new(vigia_runtime::NoRuntime));
    let err = job.run().await.unwrap_err();
    assert_eq!(err.kind(), vigia_core::ErrorKind::InvalidInput);
    let message = err.message();
    assert!(message.contains("odoo-worker"), "{message}");
    assert!(message.contains("--force-sessions"), "{message}");
    assert_eq!(
        checksums(&s, "odoo"),
        tables_live,
        "the live database is untouched"
    );
    assert_eq!(
        crate::common::odoo::databases(&s),
        databases_before,
        "nothing created"
    );
    worker
        .simple_query("SELECT 1")
        .await
        .expect("the session was left alone");

    job.force_sessions = true;
    assert!(job.run().await.unwrap().swapped);
    assert!(
        worker.simple_query("SELECT 1").await.is_err(),
        "the session was ended"
    );
}
