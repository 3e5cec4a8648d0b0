//! Backup ids: the UTC start time plus 4 random characters, `20261128T021530Z-k3f9`.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigia_core::{Error, Result};

const SUFFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupId(String);

impl BackupId {
    /// A fresh id for a backup starting at `at`.
    pub fn new(at: Timestamp) -> Self {
        let suffix: String = vigia_core::random_bytes::<4>()
            .iter()
            .map(|b| char::from(SUFFIX_ALPHABET[usize::from(*b) % SUFFIX_ALPHABET.len()]))
            .collect();
        Self(format!("{}-{suffix}", compact_utc(at)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the backup started, from the id itself.
    pub fn started_at(&self) -> Timestamp {
        parse_compact_utc(&self.0[..16]).expect("validated when the id was made")
    }
}

/// `20261128T021530Z`: the compact UTC form used in ids and store keys.
pub fn compact_utc(at: Timestamp) -> String {
    at.to_zoned_datetime(TimeZone::UTC)
        .strftime(TIME_FORMAT)
        .to_string()
}

pub fn parse_compact_utc(text: &str) -> Option<Timestamp> {
    let civil = DateTime::strptime(TIME_FORMAT, text).ok()?;
    civil
        .to_zoned_datetime(TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

impl FromStr for BackupId {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid_input(format!(
                "`{text}` is not a backup id: expected the form 20261128T021530Z-k3f9 (see `vigia backup list`)"
            ))
        };
        let (time, suffix) = text.split_once('-').ok_or_else(bad)?;
        let suffix_ok = suffix.len() == 4 && suffix.bytes().all(|b| SUFFIX_ALPHABET.contains(&b));
        if time.len() != 16 || !suffix_ok || parse_compact_utc(time).is_none() {
            return Err(bad());
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for BackupId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BackupId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.message().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_the_start_time_and_four_characters() {
        let at: Timestamp = "2026-11-28T02:15:30Z".parse().unwrap();
        let id = BackupId::new(at);
        assert!(id.as_str().starts_with("20261128T021530Z-"), "{id}");
        assert_eq!(id.as_str().len(), 21);
        assert_eq!(id.started_at(), at);
        assert_eq!(id.as_str().parse::<BackupId>().unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "20261128T021530Z",
            "20261128T021530Z-K3F9",
            "20261399T021530Z-k3f9",
            "../x-abcd",
        ] {
            assert!(bad.parse::<BackupId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_sort_by_time() {
        let a = BackupId::new("2026-01-02T00:00:00Z".parse().unwrap());
        let b = BackupId::new("2026-11-28T00:00:00Z".parse().unwrap());
        assert!(a < b);
    }
}
