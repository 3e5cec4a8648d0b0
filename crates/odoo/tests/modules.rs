//! What an upgrade reads and writes in a real PostgreSQL (the sandbox's Odoo-shaped
//! database): the modules an upgrade left unfinished, and the addon hashes it was done with.

use std::collections::BTreeMap;

use vigia_odoo::modules::{applied_hashes, record_hashes, unfinished};
use vigia_sandbox::odoo::create_odoo_database;
use vigia_sandbox::postgres::PgCluster;

async fn client(cluster: &PgCluster) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&cluster.conninfo("odoo"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn unfinished_modules_and_applied_hashes_round_trip() {
    let cluster = PgCluster::start().unwrap();
    create_odoo_database(&cluster, "odoo").unwrap();
    let client = client(&cluster).await;

    assert!(unfinished(&client).await.unwrap().is_empty());
    cluster
        .psql(
            "odoo",
            "UPDATE ir_module_module SET state = 'to upgrade' WHERE name = 'base'",
        )
        .unwrap();
    assert_eq!(
        unfinished(&client).await.unwrap(),
        [("base".to_owned(), "to upgrade".to_owned())]
    );

    assert_eq!(applied_hashes(&client).await.unwrap(), None);
    let hashes = BTreeMap::from([("sale_cr".to_owned(), "ab".repeat(32))]);
    record_hashes(&client, &hashes).await.unwrap();
    record_hashes(&client, &hashes).await.unwrap();
    assert_eq!(applied_hashes(&client).await.unwrap(), Some(hashes));

    cluster
        .psql(
            "odoo",
            "UPDATE ir_config_parameter SET value = 'not json' WHERE key = 'vigia.addon_hashes'",
        )
        .unwrap();
    let err = applied_hashes(&client).await.unwrap_err();
    assert!(err.message().contains("delete it"), "{err}");
}
