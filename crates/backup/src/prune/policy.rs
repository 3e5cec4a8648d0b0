//! Which backups retention keeps: keep-last, then the newest backup of each of the last N
//! days, ISO weeks and months (in the configured time zone), plus the newest backup that
//! passed a full or drill verification. Pure: the store is not touched here.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use vigia_core::config::RetentionConfig;

use crate::format::BackupId;

/// The bucket (a local day, ISO week or month) a backup's start falls in.
type BucketOf = fn(&jiff::ZonedDateTime) -> String;

/// Why each backup is kept; a backup absent from the map is deleted.
pub type Reasons = BTreeMap<BackupId, Vec<String>>;

/// `backups`: (id, started_at), any order. `verified`: the newest backup whose latest full or
/// drill verification passed, if any. The newest backup is always kept, whatever the policy.
pub fn keep(
    backups: &[(BackupId, Timestamp)],
    retention: &RetentionConfig,
    tz: &TimeZone,
    verified: Option<&BackupId>,
) -> Reasons {
    let mut newest_first: Vec<&(BackupId, Timestamp)> = backups.iter().collect();
    newest_first.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    let mut reasons = Reasons::new();
    let mut add = |id: &BackupId, reason: String| {
        reasons.entry(id.clone()).or_default().push(reason);
    };
    if let Some((id, _)) = newest_first.first() {
        add(id, "newest".into());
    }
    for (id, _) in newest_first.iter().take(retention.keep_last as usize) {
        add(id, format!("last {}", retention.keep_last));
    }
    let buckets: [(&str, u32, BucketOf); 3] = [
        ("daily", retention.keep_daily, |z| {
            z.strftime("%Y-%m-%d").to_string()
        }),
        ("weekly", retention.keep_weekly, |z| {
            let week = z.iso_week_date();
            format!("{}-W{:02}", week.year(), week.week())
        }),
        ("monthly", retention.keep_monthly, |z| {
            z.strftime("%Y-%m").to_string()
        }),
    ];
    for (rule, count, bucket_of) in buckets {
        let mut last_bucket: Option<String> = None;
        let mut kept = 0;
        for (id, at) in &newest_first {
            if kept >= count {
                break;
            }
            let bucket = bucket_of(&at.to_zoned_datetime(tz.clone()));
            if last_bucket.as_ref() != Some(&bucket) {
                add(id, format!("{rule} {bucket}"));
                last_bucket = Some(bucket);
                kept += 1;
            }
        }
    }
    if let Some(id) = verified {
        add(id, "newest verified".into());
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn backup(text: &str) -> (BackupId, Timestamp) {
        let t = at(text);
        (
            format!("{}-aaaa", crate::format::compact_utc(t))
                .parse()
                .unwrap(),
            t,
        )
    }

    fn policy(last: u32, daily: u32, weekly: u32, monthly: u32) -> RetentionConfig {
        RetentionConfig {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
        }
    }

    fn kept(reasons: &Reasons) -> Vec<&str> {
        reasons.keys().map(BackupId::as_str).collect()
    }

    #[test]
    fn daily_buckets_follow_the_configured_time_zone() {
        // 03:00 UTC on the 28th is 21:00 on the 27th in Costa Rica (UTC-6): one local day.
        let backups = [
            backup("2026-11-27T20:00:00Z"),
            backup("2026-11-28T03:00:00Z"),
            backup("2026-11-28T07:00:00Z"),
        ];
        let cr = TimeZone::get("America/Costa_Rica").unwrap();
        let reasons = keep(&backups, &policy(0, 2, 0, 0), &cr, None);
        assert_eq!(
            kept(&reasons),
            ["20261128T030000Z-aaaa", "20261128T070000Z-aaaa"]
        );
        assert_eq!(reasons[&backups[1].0], ["daily 2026-11-27"]);
        let reasons = keep(&backups, &policy(0, 2, 0, 0), &TimeZone::UTC, None);
        assert_eq!(
            kept(&reasons),
            ["20261127T200000Z-aaaa", "20261128T070000Z-aaaa"]
        );
    }

    #[test]
    fn last_weekly_and_monthly_add_up_and_say_why() {
        let backups: Vec<_> = (1..=30)
            .map(|day| backup(&format!("2026-11-{day:02}T12:00:00Z")))
            .chain([
                backup("2026-10-15T12:00:00Z"),
                backup("2026-09-15T12:00:00Z"),
            ])
            .collect();
        let reasons = keep(&backups, &policy(2, 3, 2, 3), &TimeZone::UTC, None);
        // last 2: 30, 29; daily 3: 30, 29, 28; weekly 2: 30 (W49), 29 (W48);
        // monthly 3: 30 (Nov), Oct 15, Sep 15.
        assert_eq!(
            kept(&reasons),
            [
                "20260915T120000Z-aaaa",
                "20261015T120000Z-aaaa",
                "20261128T120000Z-aaaa",
                "20261129T120000Z-aaaa",
                "20261130T120000Z-aaaa"
            ]
        );
        assert_eq!(
            reasons[&backups[29].0],
            [
                "newest",
                "last 2",
                "daily 2026-11-30",
                "weekly 2026-W49",
                "monthly 2026-11"
            ]
        );
        assert_eq!(reasons[&backups[31].0], ["monthly 2026-09"]);
    }

    #[test]
    fn the_newest_and_the_newest_verified_survive_a_policy_of_nothing() {
        let backups = [
            backup("2026-11-01T12:00:00Z"),
            backup("2026-11-02T12:00:00Z"),
            backup("2026-11-03T12:00:00Z"),
        ];
        let reasons = keep(
            &backups,
            &policy(0, 0, 0, 0),
            &TimeZone::UTC,
            Some(&backups[0].0),
        );
        assert_eq!(
            kept(&reasons),
            ["20261101T120000Z-aaaa", "20261103T120000Z-aaaa"]
        );
        assert_eq!(reasons[&backups[0].0], ["newest verified"]);
        assert!(keep(&[], &policy(7, 14, 8, 12), &TimeZone::UTC, None).is_empty());
    }
}
