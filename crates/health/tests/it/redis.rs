//! `redis` against a real redis-server: PONG, a wrong password, memory near maxmemory, and
//! nobody listening; without `[redis]`, skipped.

use vigia_core::ports::check::CheckStatus;
use vigia_sandbox::redis::RedisServer;

use crate::{check, config, run, status};

fn redis_table(url: &str, password: &str) -> String {
    format!("[redis]\nurl = \"{url}\"\npassword = \"env:{password}\"")
}

#[tokio::test]
async fn pong_then_a_wrong_password_then_memory_near_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let report = run(&config(dir.path(), None, "", ""), &["redis"]).await;
    assert_eq!(check(&report, "redis").summary, "[redis] is not configured");

    let server = RedisServer::start("s3cr3t-redis", 0).unwrap();
    let good = "VIGIA_TEST_REDIS_GOOD";
    let bad = "VIGIA_TEST_REDIS_BAD";
    // The environment is the secret's source, as in production (`env:`).
    unsafe_env(good, server.password());
    unsafe_env(bad, "wrong");
    let ok = config(dir.path(), None, "", &redis_table(&server.url(), good));
    let report = run(&ok, &["redis"]).await;
    let redis = check(&report, "redis");
    assert_eq!(redis.status, CheckStatus::Ok, "{redis:?}");
    assert!(redis.summary.starts_with("PONG"), "{}", redis.summary);
    let used = redis.evidence["used_memory"].as_u64().unwrap();

    let refused = config(dir.path(), None, "", &redis_table(&server.url(), bad));
    let report = run(&refused, &["redis"]).await;
    let redis = check(&report, "redis");
    assert_eq!(redis.status, CheckStatus::Critical, "{redis:?}");
    let text = serde_json::to_string(&report).unwrap();
    assert!(
        !text.contains("s3cr3t-redis") && !text.contains("wrong"),
        "{text}"
    );

    // maxmemory just above what an empty server uses: over 90% of it in use.
    let tight = RedisServer::start("s3cr3t-redis", used + used / 20).unwrap();
    let full = config(dir.path(), None, "", &redis_table(&tight.url(), good));
    let report = run(&full, &["redis"]).await;
    let redis = check(&report, "redis");
    assert_eq!(redis.status, CheckStatus::Warning, "{redis:?}");

    let gone = server.url();
    drop(server);
    let report = run(
        &config(dir.path(), None, "", &redis_table(&gone, good)),
        &["redis"],
    )
    .await;
    assert_eq!(status(&report, "redis"), CheckStatus::Warning);
    // A password written into the URL is never shown.
    let with_userinfo = gone.replace("redis://", "redis://:url-s3cr3t@");
    let tables = redis_table(&with_userinfo, good);
    let report = run(&config(dir.path(), None, "", &tables), &["redis"]).await;
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains("url-s3cr3t"), "{text}");
}

/// Sets a variable for this process (the tests here set distinct names only).
fn unsafe_env(name: &str, value: &str) {
    // SAFETY: set before any thread reads it; names are unique to this test.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(name, value);
    }
}
