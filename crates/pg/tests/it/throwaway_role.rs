//! The throwaway role that runs untrusted SQL: it owns its database and reaches nothing else
//! (no role, no other database's settings); handing back leaves the database reset, owned by
//! the configured role, and the role gone.

use crate::target;
use vigia_pg::{ThrowawayRole, role_exists};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throwaway_role_owns_its_database_and_nothing_else_then_is_handed_back() {
    let cluster = vigia_sandbox::postgres::PgCluster::start().unwrap();
    vigia_sandbox::odoo::create_odoo_database(&cluster, "odoo").unwrap();
    let admin = target(&cluster);
    cluster.create_database("scratch").unwrap();
    let name = ThrowawayRole::new_name();
    let role = ThrowawayRole::create(&admin, &name).await.unwrap();
    role.own_database("scratch").await.unwrap();

    let untrusted = role.target().connect("scratch").await.unwrap();
    untrusted
        .batch_execute("CREATE TABLE made_by_the_zip (x int)")
        .await
        .unwrap();
    // Its own database's settings it may change (and hand_back resets them)...
    untrusted
        .batch_execute("ALTER DATABASE scratch SET default_transaction_read_only = on")
        .await
        .unwrap();
    // ...but no role, and no other database.
    for sql in [
        "ALTER ROLE postgres SET default_transaction_read_only = on",
        "CREATE ROLE intruder",
        "ALTER DATABASE odoo SET default_transaction_read_only = on",
        "SET ROLE postgres",
    ] {
        assert!(untrusted.batch_execute(sql).await.is_err(), "{sql} ran");
    }
    drop(untrusted);

    role.hand_back("scratch", cluster.user()).await.unwrap();
    assert!(!role_exists(&admin, &name).await.unwrap());
    let settings = cluster
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase \
             WHERE d.datname = 'scratch'",
        )
        .unwrap();
    assert_eq!(settings.trim(), "0", "the database's settings are reset");
    let owners = cluster
        .psql(
            "scratch",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'made_by_the_zip' \
             UNION ALL SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'scratch'",
        )
        .unwrap();
    assert_eq!(owners.trim(), format!("{0}\n{0}", cluster.user()));
}
