//! Durations written the way operators write them: `30s`, `5m`, `2h`, `2d`, `1w`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{text}` has no unit: write e.g. 30s, 5m, 2h, 2d or 1w"))?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a duration: write e.g. 30s, 5m, 2h, 2d or 1w"))?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            _ => {
                return Err(format!(
                    "`{text}` has an unknown unit `{unit}`: use s, m, h, d or w"
                ));
            }
        };
        number
            .checked_mul(scale)
            .map(Self::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (n, unit) = [(604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m")]
            .into_iter()
            .find(|(scale, _)| secs != 0 && secs.is_multiple_of(*scale))
            .map_or((secs, "s"), |(scale, unit)| (secs / scale, unit));
        write!(f, "{n}{unit}")
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(HumanDuration::parse("0s").unwrap().0, Duration::ZERO);
        assert_eq!(HumanDuration::parse("2d").unwrap().0.as_secs(), 172_800);
        assert_eq!(HumanDuration::parse("5m").unwrap().0.as_secs(), 300);
    }

    #[test]
    fn refuses_missing_or_unknown_units() {
        assert!(HumanDuration::parse("10").unwrap_err().contains("no unit"));
        assert!(
            HumanDuration::parse("3y")
                .unwrap_err()
                .contains("unknown unit")
        );
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(HumanDuration::parse("48h").unwrap().to_string(), "2d");
        assert_eq!(HumanDuration::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(HumanDuration::parse("0s").unwrap().to_string(), "0s");
    }
}
